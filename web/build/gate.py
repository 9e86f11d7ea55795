"""The publish gate: a site is built only from an image that passed the harness on v86.

"Passed" means: this exact kernel and initramfs (sha256), on this v86 version, with the
page's memory size, booted to the prompt with a clean kernel log and every shell check
in ``harness.checks.CHECKS`` green. The proof comes from one of two places:

- a report JSON written by ``x86lab report`` whose v86 run used the same image (matched by
  the image builder's key, which hashes every input) and passed; or
- a boot we run here through the harness API (about 10 s for the Debian image), whose
  result is cached by the hashes above so a rebuild of the site does not boot again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from ground.cache import cache_dir
from web.build.errors import BuildError, GateFailed

ENGINE = "v86"


def gate_key(kernel_sha256: str, initrd_sha256: str, v86_version: str, memory_mib: int
             ) -> str:
    return f"{kernel_sha256[:16]}-{initrd_sha256[:16]}-{v86_version}-{memory_mib}"


def _failures(checks: list) -> list:
    return [c["name"] for c in checks if not c.get("passed")]


def from_report(report_path: Path, image_key: str, memory_mib: int) -> dict:
    """The gate record from an ``x86lab report`` JSON, or GateFailed saying why not."""
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        raise BuildError(f"{report_path}: cannot read the report ({exc})") from None
    runs = [r for r in report.get("runs", []) if r.get("engine") == ENGINE
            and r.get("image", {}).get("key") == image_key
            and r.get("memory_mib") == memory_mib]
    if not runs:
        raise GateFailed(f"{report_path} has no {ENGINE} run of image {image_key} with "
                         f"{memory_mib} MiB; run x86lab report again or drop --report")
    run = runs[0]
    failed = _failures(run.get("checks", []))
    if run.get("boot") != "ok" or failed or run.get("warnings") or not run.get("checks"):
        raise GateFailed(f"{report_path}: the {ENGINE} run failed (boot {run.get('boot')}, "
                         f"failed checks {failed}, warnings {run.get('warnings')})")
    return {"source": f"report:{report_path.name}", "engine": ENGINE, "passed": True,
            "checks": [c["name"] for c in run["checks"]], "marks": run.get("marks", {})}


def _boot_and_check(image: object, kernel: str, memory_mib: int) -> dict:
    from harness import kernel_log
    from harness.checks import run_checks
    from harness.console import ConsoleError
    from harness.engines import EngineError
    from harness.guest import start_guest

    try:  # its own console log in the harness cache: gates at once never share one
        guest = start_guest(ENGINE, image, kernel, memory_mib)
    except (EngineError, ConsoleError) as exc:
        raise GateFailed(f"the image did not boot on {ENGINE}: {exc}") from None
    try:
        results = run_checks(guest.console, memory_mib)
        marks = {k: round(v, 3) for k, v in guest.metrics().marks.items()}
    finally:
        guest.stop()
    boot_log = guest.console.boot_log or bytes(guest.console.log)
    warnings = sorted({f.key for f in kernel_log.scan(boot_log)})
    checks = [r.to_dict() for r in results]
    failed = _failures(checks)
    if failed or warnings:
        raise GateFailed(f"the image failed the harness on {ENGINE}: checks {failed}, "
                         f"kernel-log warnings {warnings}; console log: {guest.log_path}")
    return {"source": "boot", "engine": ENGINE, "passed": True,
            "checks": [c["name"] for c in checks], "marks": marks,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def require_pass(image: object, kernel: str, key: str, memory_mib: int,
                 report_path: Optional[Path] = None) -> dict:
    """The passing gate record for this image, booting it once if no proof is cached."""
    if report_path is not None:
        return from_report(report_path, str(image.manifest.get("key", "")), memory_mib)
    cached = cache_dir("web") / "gates" / f"{key}.json"
    if cached.exists():
        return {**json.loads(cached.read_text()), "cached": True}
    record = _boot_and_check(image, kernel, memory_mib)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(record, indent=1) + "\n")
    return record
