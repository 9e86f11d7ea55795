"""Busybox's own testsuite, applet by applet under a time limit: verdicts on this CPU
first, then in each booted guest; an applet cut off by the limit is judged against the
engine's measured slowdown (a hang or just slow)."""

from __future__ import annotations

import time
from typing import Dict, Sequence

from conformance import busybox_suite
from conformance.findings import SuiteResult
from conformance.guest_session import GUEST_DIR, GuestHolder, fetch_text
from conformance.program_suites import PROGRAM_TIMEOUT, busybox_result
from conformance.suite import Suite
from differential.cpu_identity import this_cpu
from ground.engines import EngineEntry


class BusyboxSuite(Suite):
    name = "busybox"
    rank = 2

    def prepare(self, engines: Sequence[EngineEntry]) -> None:
        options = self.run.options
        with self.run.timer("oracle busybox (native)"):
            self.applets = busybox_suite.applets(options.limit)
            self.run.progress(f"busybox: running {len(self.applets)} applets' tests natively")
            self.expected = busybox_suite.parse_run(busybox_suite.run_natively(
                self.applets, options.busybox_limit))

    def guest_files(self) -> Dict[str, bytes]:
        return busybox_suite.suite_files()

    def run_in_guest(self, holder: GuestHolder) -> SuiteResult:
        limit = self.run.options.busybox_limit
        start = time.monotonic()
        holder.guest.console.run(busybox_suite.guest_command(GUEST_DIR, self.applets, limit),
                                 timeout=PROGRAM_TIMEOUT + limit * len(self.applets))
        got = busybox_suite.parse_run(fetch_text(holder.guest, "/tmp/busybox.out"))
        result = busybox_result(holder.engine, self.expected, got, time.monotonic() - start,
                                limit)
        result.oracle = f"this CPU: {this_cpu().describe()}"
        return result


SUITE = BusyboxSuite
