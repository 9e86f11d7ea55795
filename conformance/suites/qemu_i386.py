"""QEMU's own ``tests/tcg/i386/test-i386``: built static for i386, run on this CPU for the
expected output, then in each booted guest; line-by-line differences grouped by test."""

from __future__ import annotations

import time
from typing import Dict, Sequence

from conformance import test_i386
from conformance.findings import SuiteResult
from conformance.guest_session import GUEST_DIR, GuestHolder, fetch_text
from conformance.program_output import symbol_table, symbolize
from conformance.program_suites import PROGRAM_TIMEOUT, test_i386_result
from conformance.suite import Suite
from ground.engines import EngineEntry


class QemuI386Suite(Suite):
    name = "test-i386"
    rank = 1

    def prepare(self, engines: Sequence[EngineEntry]) -> None:
        with self.run.timer("oracle test-i386 (native)"):
            self.run.progress("test-i386: building and running natively for the expected "
                              "output")
            binary = test_i386.build()
            self.expected = symbolize(test_i386.run_natively(binary) + "status=0\n",
                                      symbol_table(binary))

    def guest_files(self) -> Dict[str, bytes]:
        return test_i386.guest_files()

    def run_in_guest(self, holder: GuestHolder) -> SuiteResult:
        """Run it in the guest and compare; the engine's whole output, this CPU's and the
        refused-instruction log are kept beside the reproducers for a maintainer's diff."""
        guest, engine, options = holder.guest, holder.engine, self.run.options
        start = time.monotonic()
        guest.console.run(f"cd {GUEST_DIR} && {test_i386.GUEST_COMMAND}; cd /",
                          timeout=PROGRAM_TIMEOUT)
        got = fetch_text(guest, "/tmp/test-i386.out")
        skipped = fetch_text(guest, test_i386.SKIP_LOG)
        result = test_i386_result(engine, options.kernel, self.expected, got,
                                  time.monotonic() - start, skipped)
        keep = options.repro_dir / engine
        keep.mkdir(parents=True, exist_ok=True)
        shown = symbolize(got, symbol_table(test_i386.build()))
        for name, text in (("expected", self.expected), (engine, shown),
                           (f"{engine}.skipped", skipped)):
            (keep / f"test-i386.{name}.txt").write_text(text, "utf-8")
        result.note = f"outputs kept in {keep}"
        return result


SUITE = QemuI386Suite
