"""Cases on engines: run (rerunning past a case that hung or shut the machine down),
decode the dumps into named fields, compare, and judge each difference.

Who decides: QEMU (TCG) and Bochs are the oracles, the reference is the subject. Where
all three agree the case is decided by both oracles. Where they disagree, the engine
that departs from the SDM must have an entry (suite ``bare-metal``) in its
known-differences file, ``conformance/known/ENGINE.toml`` (schema: ``differential/
known.py``; ``group`` globs the case name, ``fields`` the differing fields), whose
evidence cites the SDM; the case is then decided by the other oracle. A difference no
entry explains is new (exit 1): a reference bug to fix, or an oracle divergence to
document.
"""

from __future__ import annotations

import fnmatch
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from differential.bare_metal.image import Case, build_image, parse_output
from differential.bare_metal.layout import RESULT_FIELDS, TSS16_FIELDS, TSS_FIELDS
from differential.known import KnownDifference

SUITE = "bare-metal"
UNDEFINED = "undefined by the SDM"
ORACLES = ("qemu", "bochs")
Fields = Dict[str, int]


@dataclass
class CaseResult:
    """One case on one engine: ``outcome`` is "done" (the runner printed its dumps),
    "hang" (it never came back), "shutdown" (a triple fault ended the machine), "crash"
    (the emulator died) or "missing"; ``fields`` the decoded dumps when done."""

    name: str
    outcome: str
    fields: Fields = field(default_factory=dict)


def decode(case: Case, dumps: Dict[int, bytes]) -> Fields:
    """Name every dword of the case's dumps: results.vector, results.stack0, tss_df.link,
    gdt.0x28.hi, pte.0x20c000... (no brackets: the known files' ``fields`` are globs). A
    dump the engine did not print is absent."""
    out: Fields = {}
    for name, address, length in case.dumps:
        data = dumps.get(address)
        if data is None or len(data) != length:
            continue
        words = struct.unpack(f"<{length // 4}I", data[:length & ~3])
        if name == "results":
            for label, offset in RESULT_FIELDS:
                out[f"results.{label}"] = words[offset // 4]
        elif name.startswith("tss16"):  # words, not dwords (Figure 7-11)
            halves = struct.unpack(f"<{length // 2}H", data)
            for label, value in zip(TSS16_FIELDS, halves):
                out[f"{name}.{label}"] = value
        elif name.startswith("tss"):
            for i, label in enumerate(TSS_FIELDS):
                out[f"{name}.{label}"] = words[i]
        elif name == "gdt_tss":
            for i in range(0, len(words), 2):
                selector = 0x28 + 4 * i
                out[f"gdt.{selector:#x}.lo"], out[f"gdt.{selector:#x}.hi"] = \
                    words[i], words[i + 1]
        elif name == "ptes":
            for i, word in enumerate(words):
                out[f"pte.{0x200000 + 0x1000 * i:#x}"] = word
        else:
            for i, word in enumerate(words):
                out[f"{name}.{i}"] = word
    return out


def run_cases(engine: str, cases: Sequence[Case], run: Callable[[str, Path], object],
              workdir: Optional[Path] = None, progress: Callable[[str], None] = print
              ) -> List[CaseResult]:
    """Every case on ``engine`` through ``run(engine, image) -> engines.Raw``. A case that
    starts and never ends is marked (hang, or shutdown when the machine ended) and the
    image is rebuilt with the cases after it."""
    results: List[Optional[CaseResult]] = [None] * len(cases)
    first = 0
    with tempfile.TemporaryDirectory(prefix="x86lab-bm-") as scratch:
        folder = workdir or Path(scratch)
        while first < len(cases):
            image = build_image(cases[first:], folder / f"image-{first}.elf", first)
            raw = run(engine, image)
            out = parse_output(raw.text)  # type: ignore[attr-defined]
            if not out.began:
                raise RuntimeError(f"{engine}: the runner never started ({raw.stop}; "  # type: ignore[attr-defined]
                                   f"{raw.detail}); output: {raw.text[-300:]!r}")  # type: ignore[attr-defined]
            if out.runner_fault is not None:
                raise RuntimeError(f"{engine}: the runner itself faulted (vector "
                                   f"{out.runner_fault}) after case {out.last_started}")
            for index, printed in out.cases.items():
                if printed.ended:
                    results[index] = CaseResult(cases[index].name, "done",
                                                decode(cases[index], printed.dumps))
            if out.complete:
                break
            stuck = out.last_started
            if stuck is None:  # stopped between cases: carry on after the last one
                ended = [i for i, c in out.cases.items() if c.ended]
                stuck = (max(ended) if ended else first - 1) + 1
                if stuck >= len(cases):
                    break
            stop = raw.stop  # type: ignore[attr-defined]
            outcome = {"timeout": "hang", "crash": "crash"}.get(stop, "shutdown")
            progress(f"{engine}: case {stuck} ({cases[stuck].name}) ended in {outcome} "
                     f"({stop}); rerunning the cases after it")
            results[stuck] = CaseResult(cases[stuck].name, outcome)
            first = stuck + 1
    return [r or CaseResult(c.name, "missing") for r, c in zip(results, cases)]


def known_entries(engine: str) -> List[KnownDifference]:
    """The engine's ``bare-metal`` entries in conformance/known/ENGINE.toml."""
    from conformance.findings import load_known
    return [entry for entry in load_known(engine) if entry.suite == SUITE]


def explained(entries: Sequence[KnownDifference], case_name: str, fields: Sequence[str]
              ) -> List[KnownDifference]:
    """The entries (their ``group`` globbing the case name) that together cover every
    differing field (each field among some entry's ``fields``; no ``fields``: any);
    empty when some field is left uncovered."""
    mine = [e for e in entries if any(fnmatch.fnmatchcase(case_name, g) for g in e.groups)]
    used: List[KnownDifference] = []
    for name in fields:
        entry = next((e for e in mine if any(fnmatch.fnmatchcase(name, pattern)
                                             for pattern in e.fields or ("*",))), None)
        if entry is None:
            return []
        if entry not in used:
            used.append(entry)
    return used


def differing(a: CaseResult, b: CaseResult) -> List[str]:
    """Field names on which two results differ ("outcome" if they ended differently)."""
    if a.outcome != b.outcome:
        return ["outcome"]
    names = sorted(set(a.fields) | set(b.fields))
    return [n for n in names if a.fields.get(n) != b.fields.get(n)]


@dataclass
class Verdict:
    """One case across engines: ``status`` "agree", "known" or "new"; ``decided_by``
    the oracles whose result the others were compared with and matched; ``differences``
    ``(engine, other, fields, entry id or "")``."""

    name: str
    status: str
    decided_by: Tuple[str, ...]
    differences: List[Tuple[str, str, List[str], str]] = field(default_factory=list)


def judge(name: str, results: Dict[str, CaseResult],
          known: Dict[str, List[KnownDifference]],
          undefined: Sequence[KnownDifference] = ()) -> Verdict:
    """Pairwise differences. A difference is explained when the SDM leaves every field of
    it undefined (``undefined``), or when one side's entries cover it (that side is
    wrong). The case is decided by the oracles not found wrong whose result the
    reference matches (without the reference: every oracle not found wrong)."""
    engines = list(results)
    differences = []
    wrong = set()
    new = False
    for i, left in enumerate(engines):
        for right in engines[i + 1:]:
            fields = differing(results[left], results[right])
            if not fields:
                continue
            mine = [e for e in undefined
                    if any(fnmatch.fnmatchcase(name, g) for g in e.groups)]
            rest = [f for f in fields if not any(
                fnmatch.fnmatchcase(f, p) for e in mine for p in e.fields or ("*",))]
            labels = [UNDEFINED] if len(rest) < len(fields) else []
            for side in (left, right) if rest else ():
                entries = explained(known.get(side, []), name, rest)
                if entries:
                    wrong.add(side)
                    labels.append(f"{side}: " + ", ".join(e.id or e.groups[0]
                                                          for e in entries))
                    rest = []
                    break
            if rest:
                new, labels = True, []
            label = "; ".join(labels)
            differences.append((left, right, fields, label))
    decided = tuple(e for e in ORACLES if e in results and e not in wrong and not any(
        {left, right} == {e, "reference"} and label != UNDEFINED
        for left, right, _, label in differences))
    status = "new" if new else ("known" if differences else "agree")
    return Verdict(name, status, decided, differences)
