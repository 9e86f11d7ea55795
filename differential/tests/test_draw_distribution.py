"""Campaigns draw through ``StreamDraw`` where they drew through ``RandomDraw`` (issue 18):
the cases must come from the same distribution, only from another stream. Features of
cases drawn both ways are compared (a two-sample chi-square per feature, bounded at six
standard deviations over its mean): deterministic keys and seeds, so it cannot flake; a
skewed chance, an off-by-one range or a word used twice moves a feature out of bounds."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, List

import pytest

from differential.draw import RandomDraw, StreamDraw
from differential.generator import bytes_case, form_case
from reference import BY_NAME

CASES = 1500


def _features(case) -> Dict[str, object]:
    code = case.code
    return {
        "operand-size": 0x66 in code[:4],
        "address-size": 0x67 in code[:4],
        "lock": 0xF0 in code[:4],
        "register r/m": code[-1] >= 0xC0 if len(code) == 2 else "other",
        "length": min(len(code), 8),
        "pages": len(case.memory),
        "carry": case.regs["eflags"] & 1,
        "direction": bool(case.regs["eflags"] & 0x400),
        "eax": "small" if case.regs["eax"] <= 0x100 else
               "negative" if case.regs["eax"] >= 0xFFFFFF00 else "other",
        "ecx bit 31": case.regs["ecx"] >> 31,
    }


def _tally(make: Callable[[int], object]) -> Dict[str, Counter]:
    out: Dict[str, Counter] = {}
    for number in range(CASES):
        for name, value in _features(make(number)).items():
            out.setdefault(name, Counter())[value] += 1
    return out


def _two_sample(a: Counter, b: Counter) -> List[float]:
    """(chi-square, its bound) for two equal-sized samples of one feature."""
    kinds = [k for k in set(a) | set(b) if a[k] + b[k] >= 10]
    chi = sum((a[k] - b[k]) ** 2 / (a[k] + b[k]) for k in kinds)
    df = max(1, len(kinds) - 1)
    return [chi, df + 6 * (2 * df) ** 0.5]


@pytest.mark.parametrize("row, mode", [("ADD_Ev_Gv", "prot32"), ("LES_Gv_Mp", "real16"),
                                       ("MOVS_Yv_Xv", "prot32")])
def test_form_cases_keep_their_distribution(row: str, mode: str) -> None:
    form = BY_NAME[row]
    new = _tally(lambda n: form_case(form, mode, StreamDraw(b"dist:%d" % n)))
    old = _tally(lambda n: form_case(form, mode, RandomDraw(n + 7)))
    for feature in new:
        chi, bound = _two_sample(new[feature], old[feature])
        assert chi < bound, (feature, new[feature], old[feature])


def test_bytes_cases_keep_their_distribution() -> None:
    def label(_mode: str, _code: bytes) -> None:
        return None

    new = _tally(lambda n: bytes_case("prot32", StreamDraw(b"bytes:%d" % n), label))
    old = _tally(lambda n: bytes_case("prot32", RandomDraw(n + 11), label))
    for feature in new:
        chi, bound = _two_sample(new[feature], old[feature])
        assert chi < bound, (feature, new[feature], old[feature])
