"""How the program suites' results compare with this CPU's: test-i386's output lines and
the busybox testsuite's verdicts, each turned into a ``SuiteResult`` with findings (the
suites themselves are in ``conformance/suites/``)."""

from __future__ import annotations

import re
import signal
from typing import Dict, List, Tuple

from conformance import busybox_suite, test_i386
from conformance.findings import UNDEFINED_FILE, Finding, SuiteResult, load_known
from conformance.program_output import OutputComparison, compare_output, symbol_table, symbolize
from conformance.undefined import split_undefined
from differential.cpu_identity import this_cpu
from differential.operands import disassembly

PROGRAM_TIMEOUT = 1800.0  # seconds a program suite may take in a guest


def _i386_reproducer(engine: str, kernel: str, **facts: object) -> Dict[str, object]:
    return {**facts, "binary": str(test_i386.build()),
            "build": "gcc " + " ".join(test_i386.CFLAGS),
            "command": f"x86lab conformance --engines {engine} --suites test-i386 "
                       f"--kernel {kernel} --json out.json --html out.html"}


def _skip_findings(engine: str, kernel: str, skipped: str,
                   table: Tuple[List[int], List[str]]) -> List[Finding]:
    """One finding per instruction the engine refused (SIGILL) and ``guest/skipill.c``
    stepped over: the lines after it were still compared."""
    seen: Dict[str, List[str]] = {}
    for line in skipped.splitlines():
        fields = dict(part.split("=", 1) for part in line.split(" bytes=")[0].split()[1:])
        if "eip" in fields:
            code = line.split(" bytes=", 1)[-1].strip()
            seen.setdefault(fields["eip"], [code, 0])
            seen[fields["eip"]][1] += 1  # type: ignore[operator]
    findings = []
    for eip, (code, times) in seen.items():
        where = symbolize(f"EIP={eip}", table)[4:]
        text = disassembly("prot32", bytes.fromhex(code))
        findings.append(Finding(
            engine, "test-i386", "(instruction refused)", int(times),
            f"SIGILL at {where}: {code} ({text}) stepped over {times} time(s); the lines "
            "after it were still compared (its own results are wrong)",
            _i386_reproducer(engine, kernel, eip=eip, where=where, bytes=code,
                             disassembly=text)))
    return findings


def test_i386_result(engine: str, kernel: str, expected: str, got: str,
                     seconds: float, skipped: str = "") -> SuiteResult:
    """Compare the engine's output with this CPU's. Lines the SDM leaves undefined
    (``known/undefined.toml`` with a condition) form findings of their own class;
    ``skipped`` is the guest's log of refused instructions stepped over."""
    table = symbol_table(test_i386.build())
    got = symbolize(got, table)
    comparison = compare_output(expected, got)
    cpu = this_cpu().describe()
    kept, undefined = split_undefined(comparison.diffs, load_known(UNDEFINED_FILE),
                                      "test-i386", cpu)
    findings = _skip_findings(engine, kernel, skipped, table)
    for name, diffs in OutputComparison(0, 0, kept).by_test().items():
        findings.append(Finding(engine, "test-i386", name, len(diffs),
                                f"expected {diffs[0].expected!r}, got {diffs[0].got!r}",
                                _i386_reproducer(engine, kernel, expected=diffs[0].expected,
                                                 got=diffs[0].got)))
    for name, (evidence, diffs) in undefined.items():
        findings.append(Finding(engine, "test-i386", name, len(diffs),
                                f"undefined by the SDM; this CPU and {engine} differ: expected "
                                f"{diffs[0].expected!r}, got {diffs[0].got!r}",
                                _i386_reproducer(engine, kernel, expected=diffs[0].expected,
                                                 got=diffs[0].got,
                                                 lines=len(diffs)), undefined=evidence))
    if comparison.never_reached:
        status = re.findall(r"^status=(\d+)", got, re.MULTILINE)
        number = int(status[-1]) - 128 if status and int(status[-1]) > 128 else 0
        how = f"killed by signal {number}" if number else "it stopped"
        if number == signal.SIGILL:
            how += ": SIGILL, the engine lacks an instruction this CPU executes"
        findings.append(Finding(engine, "test-i386", "(never reached)",
                                comparison.never_reached,
                                f"the program died ({how}); {comparison.never_reached} lines "
                                f"never printed, from {comparison.first_unreached!r}"))
    counts = {"never_reached": comparison.never_reached,
              "undefined": sum(len(diffs) for _, diffs in undefined.values()),
              "instructions_refused": len([f for f in findings
                                           if f.group == "(instruction refused)"])}
    return SuiteResult(engine, "test-i386", "ran", comparison.passed, comparison.total,
                       round(seconds, 2), counts, findings, oracle=f"this CPU: {cpu}")


def slowdown(expected: busybox_suite.SuiteRun, got: busybox_suite.SuiteRun) -> float:
    """How many times slower than natively the engine ran the applets that finished in
    both runs (0 when nothing measurable finished)."""
    both = [a for a in got.seconds if a in expected.seconds and a not in got.cut_off
            and a not in expected.cut_off]
    native = sum(expected.seconds[a] for a in both)
    return sum(got.seconds[a] for a in both) / native if native > 0 else 0.0


def busybox_result(engine: str, expected: busybox_suite.SuiteRun,
                   got: busybox_suite.SuiteRun, seconds: float,
                   limit: int = busybox_suite.LIMIT_SECONDS) -> SuiteResult:
    """Compare verdicts. A test never reached because its applet hit the time limit is a
    difference only if the engine should have finished it in time: the applet's native
    seconds times the engine's measured slowdown on the other applets. Otherwise the run
    lists it as cut off by the limit (slow, not wrong), with those figures."""
    findings = []
    passed = 0
    factor = slowdown(expected, got)
    too_slow: Dict[str, List[str]] = {}
    for name, verdict in expected.verdicts.items():
        mine = got.verdicts.get(name, "not reached")
        if mine == verdict:
            passed += 1
            continue
        applet = expected.applet_of.get(name, "")
        predicted = expected.seconds.get(applet, 0.0) * factor
        summary = f"native {verdict}, {engine} {mine}"
        if mine == "not reached" and applet in got.cut_off:
            if factor and predicted > limit:
                too_slow.setdefault(applet, []).append(name)
                continue
            summary += (f" ({applet} hit the {limit} s limit; natively "
                        f"{expected.seconds.get(applet, 0.0):.1f} s, so about "
                        f"{predicted:.0f} s expected at {factor:.1f}x: a hang?)")
        findings.append(Finding(engine, "busybox", name, 1, summary, {
            "test": name, "applet": applet, "expected": verdict, "got": mine,
            "guest_output": got.details.get(name, ""),
            "command": f"cd testsuite && ./runtest -v {applet}"}))
    for applet, names in too_slow.items():
        native = expected.seconds.get(applet, 0.0)
        findings.append(Finding(
            engine, "busybox", f"{applet} (time limit)", len(names),
            f"{len(names)} {applet} tests not reached: cut off by the {limit} s limit",
            {"applet": applet, "tests": names, "native_seconds": native,
             "slowdown": round(factor, 1),
             "command": f"x86lab conformance --engines {engine} --suites busybox "
                        f"--busybox-limit {int(native * factor * 1.5) + 60} ..."},
            known=f"Slow, not wrong: {applet}'s tests took {native:.1f} s natively and "
                  f"{engine} ran the other applets {factor:.1f}x slower than this CPU, so "
                  f"about {native * factor:.0f} s were needed, over the {limit} s limit "
                  "(--busybox-limit raises it)."))
    counts = {"native_pass": sum(v == "PASS" for v in expected.verdicts.values()),
              "cut_off_by_limit": sum(len(n) for n in too_slow.values())}
    return SuiteResult(engine, "busybox", "ran", passed, len(expected.verdicts),
                       round(seconds, 2), counts, findings)
