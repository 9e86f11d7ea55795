"""Measuring one engine x kernel for the report: boot it, time the stages, run the checks.

Failures are recorded, not raised: a report about a boot that hangs is still a report. A
boot whose kernel log shows warnings still gets its checks run, so the report says both.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from harness import kernel_log
from harness.checks import CHECKS, run_checks
from harness.console import BootFailure
from harness.engines import EngineError
from harness.guest import find_image, start_guest
from harness.stages import span_durations


def combo_id(engine: str, kernel: str) -> str:
    return f"{engine}-{kernel}"


def measure(engine: str, kernel: str, memory_mib: int, log_dir: Path,
            seed: Optional[int] = None) -> dict:
    """One record of the report: stages, instruction counts, warnings, check results."""
    record: dict = {"id": combo_id(engine, kernel), "engine": engine, "kernel": kernel,
                    "memory_mib": memory_mib, "boot": "ok", "error": "", "marks": {},
                    "spans": {}, "instructions": {}, "warnings": [], "checks": []}
    image = find_image(kernel)
    record["image"] = {"key": image.manifest.get("key", ""), "cmdline": image.cmdline}
    try:
        guest = start_guest(engine, image, kernel, memory_mib, log_dir=log_dir, wait=False)
    except EngineError as exc:
        return _failed(record, f"{engine} did not start: {exc}")
    record["console_log"] = str(guest.log_path)
    try:
        try:
            guest.console.wait_for_boot()
        except BootFailure as exc:
            if exc.stage != "kernel-log":  # no shell: nothing more to measure
                record.update(boot="failed", error=str(exc))
        metrics = guest.metrics()
        record["marks"] = {k: round(v, 3) for k, v in metrics.marks.items()}
        record["spans"] = {k: round(v, 3) for k, v in span_durations(metrics.marks).items()}
        record["instructions"] = dict(metrics.instructions)
        # An engine on a virtual clock retires the same instructions every boot.
        record["exact_counts"] = bool(metrics.details.get("virtual_clock"))
        if record["boot"] == "ok":
            results = run_checks(guest.console, memory_mib, seed)
            record["checks"] = [result.to_dict() for result in results]
    finally:
        # v86's runner sends its profile beside the prompt (read by the session's reader,
        # so asked for once the checks have run); other engines have none.
        profile = guest.profile()
        if profile is not None:
            record["profile"] = profile
        guest.stop()
    # The boot's part of the console (command output is not kernel log; dmesg is checked).
    boot_log = guest.console.boot_log or bytes(guest.console.log)
    record["warnings"] = sorted({f.key for f in kernel_log.scan(boot_log)})
    if record["boot"] != "ok":
        record["checks"] = [{"name": c.name, "passed": False, "seconds": 0.0,
                             "message": "not run: the boot failed"} for c in CHECKS]
    return record


def _failed(record: dict, error: str) -> dict:
    record.update(boot="failed", error=error)
    return record


def progress(text: str) -> None:
    """One line of progress on stderr (stdout is for figures)."""
    print(f"x86lab report: {text}", file=sys.stderr, flush=True)
