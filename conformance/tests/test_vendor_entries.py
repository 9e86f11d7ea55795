"""Known entries that rest on one vendor's behaviour are checked on the machine that runs
the tests: the REP CMPS/SCAS flags entry (known/native.toml) claims that CPUs it names keep
the flags from before the instruction when a REP CMPS is interrupted, and that others
write each iteration's flags. ``guest/repflags.c`` shows which this CPU does; the entry
must apply here exactly when the probe shows the kept flags."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.findings import load_known
from differential.cpu_identity import this_cpu

PROBE = Path(__file__).resolve().parent.parent / "guest" / "repflags.c"
START_FLAGS = "0xa96"


def test_the_rep_flags_entry_applies_exactly_where_this_cpu_keeps_the_flags(
        tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    binary = tmp_path / "repflags"
    built = subprocess.run(["gcc", "-m32", "-static", "-O1", "-o", str(binary), str(PROBE)],
                           capture_output=True, text=True)
    if built.returncode:
        pytest.skip(f"cannot build 32-bit programs here: {built.stderr[:200]}")
    fault = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30).stdout
    # "fault: start 0xa96 14:0x206:ecx=97": the flags seen at the page fault
    seen = fault.split()[-1].split(":")[1]
    keeps_old_flags = seen == START_FLAGS
    [entry] = [e for e in load_known("native") if "CMPS_Xv_Yv" in e.groups]
    cpu = this_cpu().describe()
    assert entry.applies_here(cpu) is keeps_old_flags, (cpu, fault)
