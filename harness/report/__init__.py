"""The boot regression report: every engine x kernel booted, timed and checked, compared
with ``harness/baseline.json``, written as JSON (for machines) and HTML (for people).

    report = build_report(["v86", "qemu"], ["tiny", "debian"], log_dir=Path("out/consoles"))
    write_report(report, Path("out/report.json"), Path("out/report.html"))
"""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path
from typing import List, Optional, Sequence

from harness.report import compare, html
from harness.report.collect import measure, progress

BASELINE = Path(__file__).resolve().parent.parent / "baseline.json"


def load_baseline(path: Optional[Path]) -> Optional[dict]:
    """The baseline at ``path``, None if there is none yet; ValueError if unreadable."""
    if path is None or not path.exists():
        return None
    try:
        baseline = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if baseline.get("schema") != compare.SCHEMA:
        raise ValueError(f"{path}: schema {baseline.get('schema')!r}, expected {compare.SCHEMA}")
    return baseline


def build_report(
    engines: Sequence[str], kernels: Sequence[str], log_dir: Path, memory_mib: int = 256,
    baseline_path: Optional[Path] = BASELINE, tolerance: float = compare.DEFAULT_TOLERANCE,
    seed: Optional[int] = None, kernels_named: bool = True,
) -> dict:
    """Boot and check each combination (one at a time: timings must not compete); without
    ``kernels_named`` an engine boots only its catalogue's default kernels."""
    from ground.engines import boot_combinations

    baseline = load_baseline(baseline_path)
    records: List[dict] = []
    combos = boot_combinations(engines, kernels, kernels_named)
    for number, (engine, kernel) in enumerate(combos, 1):
        progress(f"[{number}/{len(combos)}] {engine}-{kernel}: booting")
        record = measure(engine, kernel, memory_mib, log_dir, seed)
        passed = sum(c["passed"] for c in record["checks"])
        prompt = record["marks"].get("prompt")
        progress(f"[{number}/{len(combos)}] {engine}-{kernel}: "
                 + (f"prompt in {prompt:.1f} s" if prompt else record["error"].split("\n")[0])
                 + f", checks {passed}/{len(record['checks'])}")
        records.append(record)
    ref_id, ref_seconds = compare.reference_time(records, (baseline or {}).get("reference"))
    found = compare.regressions(records, baseline, tolerance)
    return {
        "schema": compare.SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "baseline": str(baseline_path) if baseline is not None else None,
        "tolerance": {"stage_ratio": tolerance, "min_seconds": compare.MIN_SECONDS,
                      "instructions": compare.INSTRUCTION_TOLERANCE},
        "reference": {"combo": ref_id, "seconds": ref_seconds},
        "span_ratios": {r["id"]: compare.span_ratios(r, ref_seconds) for r in records},
        "runs": records,
        "regressions": [r.to_dict() for r in found],
    }


def write_report(report: dict, json_path: Optional[Path], html_path: Optional[Path]) -> None:
    for path, text in ((json_path, json.dumps(report, indent=1) + "\n"),
                       (html_path, html.render(report))):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def update_baseline(report: dict, path: Path = BASELINE) -> dict:
    """Write the run's figures as the new baseline (after a human judged them good)."""
    baseline = compare.make_baseline(report["runs"])
    path.write_text(json.dumps(baseline, indent=1, sort_keys=True) + "\n")
    return baseline
