"""Regression rules and rendering of the report, on synthetic boot records."""

from __future__ import annotations

import copy
import re
from typing import Dict, List

from harness.report import compare, html


def record(engine: str, kernel: str, marks: Dict[str, float], instructions: int = 0,
           warnings: List[str] = (), failed_check: str = "") -> dict:
    spans = {"firmware": marks["kernel"], "kernel": marks["init"] - marks["kernel"],
             "init": marks["prompt"] - marks["init"]}
    checks = [{"name": "machine", "passed": failed_check != "machine", "seconds": 0.1,
               "message": "uname -m: got 'i586'" if failed_check == "machine" else ""}]
    return {"id": f"{engine}-{kernel}", "engine": engine, "kernel": kernel, "boot": "ok",
            "error": "", "marks": marks, "spans": spans, "warnings": list(warnings),
            "instructions": {"prompt": instructions} if instructions else {},
            "checks": checks, "memory_mib": 256}


def run(load: float = 1.0, v86_kernel: float = 10.0, **v86: object) -> List[dict]:
    """A run on a machine ``load`` times slower than usual."""
    qemu = record("qemu", "tiny", {k: v * load for k, v in
                                   {"kernel": 0.2, "init": 0.9, "prompt": 1.0}.items()})
    marks = {"kernel": 1.0, "init": 1.0 + v86_kernel, "prompt": 1.5 + v86_kernel}
    return [qemu, record("v86", "tiny", {k: v * load for k, v in marks.items()},
                         instructions=v86.pop("instructions", 225_000_000), **v86)]


BASELINE = compare.make_baseline(run())


def kinds(records: List[dict]) -> List[str]:
    return [r.kind for r in compare.regressions(records, BASELINE)]


def test_same_figures_are_no_regression() -> None:
    assert kinds(run()) == []


def test_a_slower_machine_is_no_regression_because_ratios_hold() -> None:
    assert kinds(run(load=2.5)) == []


def test_a_slower_stage_is_a_regression_beyond_the_tolerance() -> None:
    assert kinds(run(v86_kernel=14.0)) == []  # +40 %: within the 50 % tolerance
    found = compare.regressions(run(v86_kernel=16.0), BASELINE)
    assert [(r.combo, r.kind) for r in found] == [("v86-tiny", "stage")]
    assert "kernel took 16.00x" in found[0].detail


def test_new_warning_failed_check_and_instructions_are_regressions() -> None:
    records = run(warnings=["WARNING: CPU: 0 PID: 1 at foo.c:1"], failed_check="machine",
                  instructions=300_000_000)
    assert sorted(kinds(records)) == ["check", "instructions", "warning"]


def test_an_exact_count_changes_by_one_instruction_and_is_a_regression() -> None:
    exact = run()
    exact[1]["exact_counts"] = True  # an engine on a virtual clock
    baseline = compare.make_baseline(exact)
    assert compare.regressions(exact, baseline) == []
    fewer = copy.deepcopy(exact)
    fewer[1]["instructions"]["prompt"] -= 1  # fewer counts too: the boot changed
    found = compare.regressions(fewer, baseline)
    assert [(r.combo, r.kind) for r in found] == [("v86-tiny", "instructions")]
    assert "exactly" in found[0].detail
    counted = copy.deepcopy(fewer)
    counted[1]["exact_counts"] = False  # a counting engine keeps its 10 % tolerance
    assert compare.regressions(counted, baseline) == []


def test_a_failed_boot_is_a_regression_even_without_a_baseline() -> None:
    records = run()
    records[1].update(boot="failed", error="v86: no 'x86lab# ' within 60 s\n...")
    assert [r.kind for r in compare.regressions(records, None)] == ["boot"]


def test_html_is_self_contained_with_a_timeline_per_engine() -> None:
    records = run()
    report = {"created": "now", "baseline": None, "runs": records, "regressions": [],
              "reference": {"combo": "qemu-tiny", "seconds": 1.0},
              "span_ratios": {r["id"]: compare.span_ratios(r, 1.0) for r in records}}
    page = html.render(copy.deepcopy(report))
    assert page.count("<svg") == 2
    assert len(re.findall(r"<rect ", page)) == 6  # three spans x two boots
    assert not re.search(r"<script|src=|href=", page)
    assert "225,000,000" in page


def test_the_baselines_reference_is_used_when_the_run_has_it() -> None:
    records = run() + [record("qemu", "debian", {"kernel": 3.0, "init": 4.0, "prompt": 4.4})]
    assert compare.reference_time(records)[0] == "qemu-tiny"
    assert compare.reference_time(records, prefer="qemu-debian") == ("qemu-debian", 4.4)


def test_a_profiled_boot_gets_a_phase_timeline_with_busy_and_idle_shares() -> None:
    records = run()
    phases = [("load", 0, 100, 0), ("bios", 100, 400, 300), ("kernel", 400, 1400, 600)]
    records[1]["profile"] = {
        "phases": [{"name": n, "start_ms": s, "end_ms": e, "wall_ms": e - s, "busy_ms": b,
                    "idle_ms": e - s - b, "instructions": 1000} for n, s, e, b in phases],
        "end": "prompt", "total_ms": 1400, "idle_ms": 400, "instructions": 3000,
        "initcalls": [], "async_wait_ms": 160.0}
    report = {"created": "now", "baseline": None, "runs": records, "regressions": [],
              "reference": {"combo": "qemu-tiny", "seconds": 1.0},
              "span_ratios": {r["id"]: compare.span_ratios(r, 1.0) for r in records}}
    page = html.render(report)
    assert page.count("<svg") == 3  # two engines' timelines and v86's profile
    # 1400 ms over the 560 px bar width is 0.4 px a millisecond, after the 70 px labels:
    # the kernel phase starts at 70 + 400 * 0.4 = 230 px, 600 ms busy = 240 px solid,
    # then 400 ms idle = 160 px pale.
    assert re.search(r'<rect x="230.0" y="\d+" width="240.0" height="20" fill="#fc8d62"/>',
                     page)
    assert re.search(r'<rect x="470.0" y="\d+" width="160.0" height="20" fill="#fc8d62" '
                     r'fill-opacity="0.35"/>', page)
    assert "1000 ms (400 idle)" in page
    assert "waiting for asynchronous probes after the last initcall: 160 ms" in page
    assert not re.search(r"<script|src=|href=", page)
