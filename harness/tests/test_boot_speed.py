"""``x86lab bench --boot`` (harness.boot_speed): the figures worked out from a run's
``X86LAB`` records, the plumbing around one reference child (command line, cache
directory, exit status, its own peak RSS) with a fake child standing in for the PC, the
CLI's option checks, and one real quick bench (slow)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest

from harness.boot_speed import (
    PATHS,
    BootBenchError,
    add_ratios,
    figures_from_records,
    run_reference,
)
from reference.cpu import MAKER_BLOCK_THRESHOLD
from x86lab.cli import EXIT_OK, EXIT_USAGE, main

MIB = 1 << 20


def rec(event: str, t: float, instructions: int, **more: Any) -> Dict[str, Any]:
    return {"event": event, "t": t, "instructions": instructions, **more}


BOOT: List[Dict[str, Any]] = [
    {"event": "started", "interpreter": "CPython 3.11", "t": 0.1,
     "blocks": {"threshold": 40, "cache_lookups": 4, "cache": True, "maker": True}},
    rec("counter", 2.0, 5_000_123),
    rec("stage", 3.0, 8_000_000, name="kernel"),
    rec("counter", 4.0, 10_500_000),
    rec("counter", 9.0, 20_000_000),
    rec("stage", 20.0, 54_000_000, name="prompt"),
    rec("stop", 20.1, 54_000_100, reason="stopped", detail="stage prompt reached"),
]


def test_figures_to_the_prompt() -> None:
    figures = figures_from_records(BOOT, peak_rss_kib=358_400)
    assert figures["interpreter"] == "CPython 3.11"
    assert figures["blocks"] == BOOT[0]["blocks"]
    assert figures["instructions"] == 54_000_000
    assert figures["seconds"] == 20.0
    assert figures["ips"] == pytest.approx(2_700_000)  # 54 M / 20 s
    # The first counter at or after 10 M: the one at 10.5 M, 4 s in.
    assert figures["warmup_instructions"] == 10_500_000
    assert figures["warmup_seconds"] == 4.0
    # (54 M - 10.5 M) / (20 s - 4 s) = 43.5 M / 16 s
    assert figures["steady_ips"] == pytest.approx(2_718_750)
    assert figures["peak_rss_mib"] == pytest.approx(350.0)  # 358,400 KiB / 1024


def test_no_warmup_when_the_prompt_comes_first() -> None:
    """A counter past the end of the workload is not the warm-up of that workload."""
    records = [rec("counter", 1.0, 4_000_000), rec("stage", 2.0, 6_000_000, name="prompt"),
               rec("counter", 3.0, 10_000_000)]
    figures = figures_from_records(records, 1024)
    assert figures["warmup_seconds"] is None and figures["steady_ips"] is None
    assert figures["ips"] == pytest.approx(3_000_000)
    assert figures["interpreter"] is None and figures["blocks"] is None


def test_budget_run_ends_at_its_stop_record() -> None:
    records = [rec("counter", 1.0, 1_000_000),
               rec("stop", 4.0, 2_000_050, reason="budget", detail="")]
    figures = figures_from_records(records, 2048, stop_at="budget", warmup_at=1_000_000)
    assert figures["instructions"] == 2_000_050
    assert figures["ips"] == pytest.approx(500_012.5)  # 2,000,050 / 4 s
    assert figures["warmup_seconds"] == 1.0
    assert figures["steady_ips"] == pytest.approx(1_000_050 / 3.0)


def test_a_run_that_never_reaches_the_prompt_says_why() -> None:
    records = [rec("stage", 1.0, 10, name="kernel"),
               rec("stop", 2.0, 20, reason="triple-fault", detail="at 0010:c0100000")]
    with pytest.raises(BootBenchError, match="before prompt: triple-fault at 0010:c0100000"):
        figures_from_records(records, 1)


def test_ratios_to_v86() -> None:
    run = {"ips": 2_000_000.0, "steady_ips": None, "seconds": 30.0}
    peer = {"ips": 8_000_000.0, "seconds": 6.0}
    out = add_ratios(run, peer)
    assert out["ips_ratio"] == 0.25 and out["steady_ips_ratio"] is None
    assert out["seconds_vs_v86"] == 5.0
    assert add_ratios(run, peer, to_prompt=False)["seconds_vs_v86"] is None


# --- one child, faked ----------------------------------------------------------------------
FAKE_PC = """\
#!{python}
# Stands in for `python -m reference.pc`: notes its argv and X86LAB_CACHE, holds
# {mib} MiB (touched, so resident), prints the metric lines a boot prints, exits {status}.
import json, os, sys
with open({notes!r}, "w") as notes:
    json.dump({{"argv": sys.argv[1:], "cache": os.environ.get("X86LAB_CACHE")}}, notes)
held = bytearray({mib} << 20)
for at in range(0, len(held), 4096):
    held[at] = 1
peak = [int(line.split()[1]) for line in open("/proc/self/status")
        if line.startswith("VmHWM:")][0]
for record in {records!r}:
    if record["event"] == "stop":
        record["peak_rss_kib"] = peak  # as reference.pc reports its own
    sys.stderr.write("X86LAB " + json.dumps(record) + "\\n")
sys.stderr.write("reference PC: done\\n")
sys.exit({status})
"""


def fake_python(tmp_path: Path, mib: int = 0, status: int = 0) -> Path:
    script = tmp_path / "fake-python"
    script.write_text(FAKE_PC.format(python=sys.executable, mib=mib, status=status,
                                     notes=str(tmp_path / "notes.json"), records=BOOT))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


IMAGE = SimpleNamespace(kernel=Path("/images/bzImage"), initrd=Path("/images/initrd"),
                        cmdline="console=ttyS0")


def test_one_run_its_command_cache_and_own_peak_rss(tmp_path: Path) -> None:
    run = run_reference(str(fake_python(tmp_path, mib=96)), IMAGE, PATHS[1], tmp_path / "c",
                        memory_mib=64)
    notes = json.loads((tmp_path / "notes.json").read_text())
    argv = notes["argv"]
    assert argv[:2] == ["-m", "reference.pc"]
    assert argv[argv.index("--kernel") + 1] == "/images/bzImage"
    assert argv[argv.index("--memory") + 1] == "64"
    assert argv[argv.index("--exit-at-stage") + 1] == "prompt"
    assert argv[argv.index("--progress") + 1] == "10000000"
    # blocks at CPython's threshold under either interpreter (PyPy's default is 0: off)
    assert argv[argv.index("--block-threshold") + 1] == str(MAKER_BLOCK_THRESHOLD)
    assert notes["cache"] == str(tmp_path / "c")
    assert run["path"] == "blocks, cold cache"
    assert run["instructions"] == 54_000_000
    # Its own peak: the 96 MiB it touched and the interpreter, not just the interpreter
    # (a CPython alone is some 10 MiB), and far below 96 MiB plus a second copy.
    assert 96 <= run["peak_rss_mib"] < 2 * 96


def test_the_interpreter_path_turns_blocks_and_their_cache_off(tmp_path: Path) -> None:
    run_reference(str(fake_python(tmp_path)), IMAGE, PATHS[0], None, instructions=3_000_000)
    argv = json.loads((tmp_path / "notes.json").read_text())["argv"]
    assert argv[argv.index("--block-threshold") + 1] == "0"
    assert "--no-block-cache" in argv
    assert argv[argv.index("--budget") + 1] == "3000000"
    assert "--exit-at-stage" not in argv


def test_a_failing_child_is_reported_with_its_stderr(tmp_path: Path) -> None:
    with pytest.raises(BootBenchError, match=r"status 1(.|\n)*reference PC: done"):
        run_reference(str(fake_python(tmp_path, status=1)), IMAGE, PATHS[0], None)


def test_a_hung_child_is_stopped(tmp_path: Path) -> None:
    script = tmp_path / "hung-python"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(BootBenchError, match="did not reach the end"):
        run_reference(str(script), IMAGE, PATHS[0], None, timeout=0.5)


# --- the command ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["bench", "--boot", "--pipeline"],
                                  ["bench", "--instructions", "5"],
                                  ["bench", "--boot", "--instructions", "0"]],
                         ids=["boot-and-pipeline", "instructions-without-boot", "zero"])
def test_option_mistakes_are_usage_errors(argv: List[str]) -> None:
    assert main(argv) == EXIT_USAGE


@pytest.mark.slow
def test_quick_real_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real thing, each reference run cut at 2 M instructions (v86 still boots to
    the prompt): every run and the peer give figures, the ratios are theirs."""
    out = tmp_path / "boot.json"
    assert main(["bench", "--boot", "--instructions", "2000000", "--json", str(out)]) == EXIT_OK
    figures = json.loads(out.read_text())
    assert "v86" in capsys.readouterr().out  # the table was printed
    peer = figures["v86"]
    assert peer["instructions"] > 10_000_000  # the tiny boot to the prompt is ~54 M
    assert len(figures["runs"]) in (3, 6)
    for run in figures["runs"]:
        assert run["instructions"] >= 2_000_000
        assert run["ips_ratio"] == pytest.approx(run["ips"] / peer["ips"])
        assert run["peak_rss_mib"] > 256  # the guest's 256 MiB of RAM is in it
        assert run["seconds_vs_v86"] is None
    assert os.path.exists(out)
