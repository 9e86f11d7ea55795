"""The harness's shell checks (``harness/checks.py``) in each booted guest: one finding
per failed check."""

from __future__ import annotations

import time
from typing import List

from conformance.findings import Finding, SuiteResult
from conformance.guest_session import GuestHolder
from conformance.suite import Suite


class ShellSuite(Suite):
    name = "shell"
    rank = 3

    def run_in_guest(self, holder: GuestHolder) -> SuiteResult:
        from harness.checks import run_checks

        engine = holder.engine
        start = time.monotonic()
        results = run_checks(holder.guest.console, holder.guest.memory_mib)
        findings: List[Finding] = [Finding(engine, "shell", r.name, 1, r.message[:300])
                                   for r in results if not r.passed]
        return SuiteResult(engine, "shell", "ran", sum(r.passed for r in results),
                           len(results), round(time.monotonic() - start, 2), {}, findings)


SUITE = ShellSuite
