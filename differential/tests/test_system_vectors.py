"""``vectors generate --version 2`` for the groups decided by Unicorn and the SDM: the
generator is deterministic and the committed corpus is what it writes (the first vectors
of a form do not depend on how many are asked for), and the cases it keeps are the
architecture's, checked here against the SDM by hand."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Dict, List

import pytest

from differential.system_vectors import generate_system
from ground.cache import REPO_ROOT

CORPUS_V2 = REPO_ROOT / "vectors" / "corpus-v2"
GROUPS = ("privileged", "fast-calls", "debug", "single-step", "breakpoints")


def _lines(path: Path) -> List[Dict[str, object]]:
    with gzip.open(path, "rt") as stream:
        return [json.loads(line) for line in stream][1:]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("v2")
    generate_system(GROUPS, per_form=2, seed=1, out=out)
    return out


def test_the_committed_groups_are_what_the_generator_writes(written: Path) -> None:
    files = sorted(written.rglob("*.jsonl.gz"))
    assert {p.parts[-3] for p in files} == {*GROUPS, "decided-by-sdm"}
    for path in files:
        committed = _lines(CORPUS_V2 / path.relative_to(written))
        mine = _lines(path)
        assert mine == committed[:len(mine)], path.name


def test_sysenter_and_rdpmc_are_decided_by_the_sdm(written: Path) -> None:
    """Unicorn runs neither (SYSENTER goes to a hook, RDPMC raises #UD), so every vector of
    theirs is the reference's, naming the entry; SYSENTER with SYSENTER_CS = 8 from CPL 3
    ends at CPL 0 with CS 8, SS 0x10 and EIP/ESP from the MSRs (SDM Vol. 2B, SYSENTER)."""
    assert not (written / "privileged" / "prot32" / "RDPMC.jsonl.gz").exists()
    sysenter = _lines(written / "decided-by-sdm" / "prot32" / "SYSENTER.jsonl.gz")
    assert {v["final"]["notes"]["known"] for v in sysenter} == {  # type: ignore[index]
        "unicorn-sysenter-is-not-executed"}
    entered = 0
    for vector in sysenter:
        start, end = vector["initial"]["system"], vector["final"]["system"]  # type: ignore
        msrs = start["msrs"]
        if vector["final"]["exception"] is None and msrs["0x174"] & 0xFFFC:  # type: ignore
            entered += 1
            assert end["cpl"] == 0 and end["segments"]["cs"]["selector"] == msrs["0x174"] & 0xFFFC
            assert end["segments"]["ss"]["selector"] == (msrs["0x174"] & 0xFFFC) + 8
            assert vector["final"]["regs"]["eip"] == msrs["0x176"]  # type: ignore[index]
            assert vector["final"]["regs"]["esp"] == msrs["0x175"]  # type: ignore[index]
            assert not vector["final"]["regs"]["eflags"] & 0x200  # type: ignore[index]
    assert entered


def test_single_step_sets_bs_after_the_instruction(written: Path) -> None:
    """EFLAGS.TF: a #DB trap after the instruction, EIP past it, DR6.BS (bit 14) set and
    the other DR6 bits kept (SDM Vol. 3B, 17.3.1.4)."""
    paths = sorted((written / "single-step" / "prot32").glob("*.jsonl.gz"))
    assert len(paths) == 4
    for path in paths:
        for vector in _lines(path):
            assert vector["final"]["exception"] == {"vector": 1, "kind": "trap",
                                                    "error_code": None}
            before = vector["initial"]["system"]["dr"]["dr6"]  # type: ignore[index]
            after = vector["final"]["system"]["dr"]["dr6"]  # type: ignore[index]
            assert after == before | 1 << 14
            assert vector["final"]["regs"]["eip"] == 0x1000 + len(vector["bytes"])  # type: ignore


def test_an_enabled_execute_breakpoint_faults_before_the_instruction() -> None:
    """An enabled (Ln or Gn) execute breakpoint (R/W = LEN = 00) at the instruction with RF
    clear: #DB as a fault, nothing changed but DR6.Bn (SDM Vol. 3B, 17.3.1.1); otherwise
    the instruction runs. Checked by the SDM's rule on every committed vector of the group
    (the first test shows the generator writes them)."""
    seen = set()
    for path in sorted((CORPUS_V2 / "breakpoints" / "prot32").glob("*.jsonl.gz")):
        for vector in _lines(path):
            debug = vector["initial"]["system"]["dr"]  # type: ignore[index]
            dr7, eip = debug["dr7"], vector["initial"]["regs"]["eip"]  # type: ignore
            rf = vector["initial"]["regs"]["eflags"] & 1 << 16  # type: ignore[index]
            armed = [n for n in range(4) if dr7 >> 2 * n & 3 and not dr7 >> 16 + 4 * n & 0xF
                     and debug[f"dr{n}"] == eip]
            fires = bool(armed) and not rf
            seen.add(fires)
            after = vector["final"]["system"]["dr"]["dr6"]  # type: ignore[index]
            if fires:
                assert vector["final"]["exception"] == {"vector": 1, "kind": "fault",
                                                        "error_code": None}
                assert vector["final"]["regs"]["eip"] == eip  # type: ignore[index]
                assert after == debug["dr6"] | sum(1 << n for n in armed)
            else:
                assert vector["final"]["exception"] is None and after == debug["dr6"]
    assert seen == {True, False}
