"""The program suites in a booted guest: test-i386, the busybox testsuite and the
harness's shell checks, each turned into a ``SuiteResult`` with findings."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Dict, List, Sequence

from conformance import busybox_suite, test_i386
from conformance.findings import Finding, SuiteResult
from conformance.guest_session import GUEST_DIR, fetch_text
from conformance.program_output import compare_output, symbol_table, symbolize

if TYPE_CHECKING:
    from harness.guest import Guest

PROGRAM_TIMEOUT = 1800.0


def test_i386_expected() -> str:
    """Symbolised native output plus the exit status line the guest run also prints."""
    binary = test_i386.build()
    return symbolize(test_i386.run_natively(binary) + "status=0\n", symbol_table(binary))


def test_i386_result(engine: str, kernel: str, expected: str, got: str,
                     seconds: float) -> SuiteResult:
    got = symbolize(got, symbol_table(test_i386.build()))
    comparison = compare_output(expected, got)
    findings = []
    for name, diffs in comparison.by_test().items():
        findings.append(Finding(engine, "test-i386", name, len(diffs),
                                f"expected {diffs[0].expected!r}, got {diffs[0].got!r}",
                                {"expected": diffs[0].expected, "got": diffs[0].got,
                                 "binary": str(test_i386.build()),
                                 "build": "gcc " + " ".join(test_i386.CFLAGS),
                                 "command": f"x86lab conformance --engines {engine} --suites "
                                            f"test-i386 --kernel {kernel} --json out.json "
                                            "--html out.html"}))
    if comparison.never_reached:
        status = re.findall(r"^status=(\d+)", got, re.MULTILINE)
        how = (f"killed by signal {int(status[-1]) - 128}" if status and int(status[-1]) > 128
               else "it stopped")
        findings.append(Finding(engine, "test-i386", "(never reached)",
                                comparison.never_reached,
                                f"the program died ({how}); {comparison.never_reached} lines "
                                f"never printed, from {comparison.first_unreached!r}"))
    counts = {"never_reached": comparison.never_reached}
    return SuiteResult(engine, "test-i386", "ran", comparison.passed, comparison.total,
                       round(seconds, 2), counts, findings)


def run_test_i386(guest: Guest, engine: str, kernel: str, expected: str) -> SuiteResult:
    start = time.monotonic()
    guest.console.run(f"cd {GUEST_DIR} && {test_i386.GUEST_COMMAND}; cd /",
                      timeout=PROGRAM_TIMEOUT)
    got = fetch_text(guest, "/tmp/test-i386.out")
    return test_i386_result(engine, kernel, expected, got, time.monotonic() - start)


def busybox_result(engine: str, expected: Dict[str, str], got: Dict[str, str],
                   seconds: float) -> SuiteResult:
    findings = []
    passed = 0
    for name, verdict in expected.items():
        mine = got.get(name, "not reached")
        if mine == verdict:
            passed += 1
            continue
        findings.append(Finding(engine, "busybox", name, 1,
                                f"native {verdict}, {engine} {mine}",
                                {"test": name, "expected": verdict, "got": mine,
                                 "command": "cd testsuite && ./runtest -v "
                                            + name.split()[0].split("-")[0]}))
    return SuiteResult(engine, "busybox", "ran", passed, len(expected), round(seconds, 2),
                       {"native_pass": sum(v == "PASS" for v in expected.values())}, findings)


def run_busybox(guest: Guest, engine: str, selected: Sequence[str],
                expected: Dict[str, str]) -> SuiteResult:
    start = time.monotonic()
    guest.console.run(busybox_suite.guest_command(GUEST_DIR, selected),
                      timeout=PROGRAM_TIMEOUT)
    got = busybox_suite.verdicts(fetch_text(guest, "/tmp/busybox.out"))
    return busybox_result(engine, expected, got, time.monotonic() - start)


def run_shell(guest: Guest, engine: str) -> SuiteResult:
    from harness.checks import run_checks

    start = time.monotonic()
    results = run_checks(guest.console, guest.memory_mib)
    findings: List[Finding] = [Finding(engine, "shell", r.name, 1, r.message[:300])
                               for r in results if not r.passed]
    return SuiteResult(engine, "shell", "ran", sum(r.passed for r in results), len(results),
                       round(time.monotonic() - start, 2), {}, findings)
