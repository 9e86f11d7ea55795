"""Linux's own x86 selftests (``conformance/selftests.py``): LDT/GDT entries, sigreturn
with odd segments, vm86 entry, the MOV SS trap, single-step across syscalls, iopl/ioperm,
x87 compare and move forms. Each test runs under a time limit on this CPU first, then in
each booted guest; its exit status and its ``[OK]``/``[FAIL]``/``[SKIP]`` lines are
compared, test by test and line by line.

This CPU runs them under this machine's 64-bit kernel, the guests under the image's 32-bit
one: a difference that every booted engine shows alike may be the kernels', not the
CPU's, so each finding names the engines that printed the same (``finish``).
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Set

from conformance import selftests
from conformance.findings import Finding, SuiteResult, load_known, mark_known
from conformance.guest_session import GUEST_DIR, GuestHolder, fetch_text
from conformance.program_suites import PROGRAM_TIMEOUT
from conformance.suite import Suite
from differential.cpu_identity import this_cpu
from ground.engines import EngineEntry

NOT_RUN = selftests.TestRun(status=-1)
GUEST_KERNEL = "guest-kernel"
"""``known/guest-kernel.toml``: what this machine's 64-bit kernel and the guests' 32-bit
one make the tests print differently, whatever the engine."""


@dataclass
class LineDifference:
    section: str  # the [RUN] line it follows (this CPU's where it has the line), no selectors
    expected: str  # "(no line)" where the engine printed one this CPU did not
    got: str


def line_differences(expected: selftests.TestRun, got: selftests.TestRun,
                     shapes: Set[str]) -> List[LineDifference]:
    """Every verdict line that differs, aligned (section and line) so that one extra or
    missing line does not shift every later one; within a differing stretch lines pair
    in order, since a test often prints a ``[SKIP]`` for a case without its ``[RUN]``
    line (sigreturn's 64-bit CS cases under a 32-bit kernel), so its section is the
    previous case's. Lines of an unstable shape compare with numbers masked. A
    difference is named by this CPU's section where it has the line, without selectors."""
    left = selftests.masked(expected.verdicts, shapes)
    right = selftests.masked(got.verdicts, shapes)
    left_sections = [selftests.section_name(section) for section in expected.sections]
    right_sections = [selftests.section_name(section) for section in got.sections]
    found: List[LineDifference] = []
    matcher = difflib.SequenceMatcher(
        a=[f"{name}\n{line}" for name, line in zip(left_sections, left)],
        b=[f"{name}\n{line}" for name, line in zip(right_sections, right)], autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for i in range(max(a1 - a0, b1 - b0)):
            mine, theirs = a0 + i < a1, b0 + i < b1
            found.append(LineDifference(
                left_sections[a0 + i] if mine else right_sections[b0 + i],
                left[a0 + i] if mine else "(no line)", right[b0 + i] if theirs else "(no line)"))
    return found


def describe_status(status: int, limit: int) -> str:
    if status == -1:
        return "never finished (the guest lost it)"
    if status == 143:
        return f"cut off by the {limit} s limit"
    return f"exit {status}"


def compare_test(engine: str, name: str, expected: selftests.TestRun,
                 got: selftests.TestRun, binary: str, limit: int,
                 shapes: Set[str]) -> List[Finding]:
    """One finding per ``[RUN]`` section whose verdict lines differ (group ``test:
    section``; ``test`` for lines before any section), and one for the exit status."""
    reproducer = {"test": name, "binary": binary, "build": selftests.Build().command,
                  "guest_command": f"timeout {limit} {GUEST_DIR}/selftests/{name}_32",
                  "native_command": f"taskset -c 0 {binary}",
                  "expected_status": expected.status, "got_status": got.status,
                  "guest_output": got.output[-2000:], "native_output": expected.output[-2000:]}
    findings = []
    if expected.status != got.status:
        findings.append(Finding(engine, "selftests", f"{name}: (exit status)", 1,
                                f"native {describe_status(expected.status, limit)}, {engine} "
                                f"{describe_status(got.status, limit)}", dict(reproducer)))
    by_section: Dict[str, List[LineDifference]] = {}
    for difference in line_differences(expected, got, shapes):
        by_section.setdefault(difference.section, []).append(difference)
    for section, differences in by_section.items():
        first = differences[0]
        findings.append(Finding(
            engine, "selftests", f"{name}: {section}" if section else name, len(differences),
            f"expected {first.expected!r}, got {first.got!r}",
            {**reproducer, "section": section,
             "lines": [{"expected": d.expected, "got": d.got} for d in differences]}))
    return findings


class SelftestsSuite(Suite):
    name = "selftests"
    rank = 4

    def prepare(self, engines: Sequence[EngineEntry]) -> None:
        with self.run.timer("oracle selftests (native)"):
            self.run.progress("selftests: building the 32-bit tests and running them natively")
            self.built = selftests.build()
            # Always whole, as test-i386: 23 tests take 8 s on QEMU, 25 s on v86.
            self.tests = sorted(self.built.binaries)
            self.expected = selftests.parse_run(selftests.run_natively(self.built))
            self.shapes = selftests.unstable_shapes(
                self.expected, selftests.parse_run(selftests.run_natively(self.built, round_=2)))
        self.by_engine: Dict[str, Dict[str, selftests.TestRun]] = {}

    def guest_files(self) -> Dict[str, bytes]:
        return selftests.guest_files(self.built)

    def run_in_guest(self, holder: GuestHolder) -> SuiteResult:
        engine, limit = holder.engine, selftests.LIMIT_SECONDS
        start = time.monotonic()
        holder.guest.console.run(selftests.guest_command(GUEST_DIR, self.tests, limit),
                                 timeout=PROGRAM_TIMEOUT + limit * len(self.tests))
        got = self.by_engine[engine] = selftests.parse_run(
            fetch_text(holder.guest, selftests.GUEST_OUT))
        findings: List[Finding] = []
        for name in self.tests:
            findings += compare_test(engine, name, self.expected.get(name, NOT_RUN),
                                     got.get(name, NOT_RUN), str(self.built.binaries[name]),
                                     limit, self.shapes)
        differing = {f.reproducer["test"] for f in findings}
        lines = sum(len(self.expected.get(n, NOT_RUN).verdicts) for n in self.tests)
        counts = {"verdict_lines": lines,
                  "lines_differing": sum(len(f.reproducer.get("lines", ())) for f in findings),
                  "cut_off_by_limit": sum(r.status == 143 for r in got.values()),
                  "not_built": len(self.built.failed)}
        result = SuiteResult(engine, "selftests", "ran", len(self.tests) - len(differing),
                             len(self.tests), round(time.monotonic() - start, 2), counts,
                             findings, oracle=f"this CPU: {this_cpu().describe()}")
        if self.built.failed:
            result.note = "not built: " + "; ".join(
                f"{name}: {reason}" for name, reason in sorted(self.built.failed.items()))
        return result

    def finish(self, results: List[SuiteResult]) -> None:
        """Each finding names the other engines that printed the same status and verdict
        lines for that test (alike on every booted engine: perhaps the kernels differ),
        and those the guest's kernel explains (``known/guest-kernel.toml``) are marked."""
        kernel_known = load_known(GUEST_KERNEL)
        cpu = this_cpu().describe()
        for result in results:
            if result.suite != self.name or result.engine not in self.by_engine:
                continue
            mark_known([f for f in result.findings if f.is_new], kernel_known, cpu)
            for finding in result.findings:
                test = str(finding.reproducer["test"])
                mine = self.by_engine[result.engine].get(test, NOT_RUN)
                finding.reproducer["agree_with_this_engine"] = [
                    engine for engine, runs in self.by_engine.items()
                    if engine != result.engine and
                    (runs.get(test, NOT_RUN).status, selftests.masked(
                        runs.get(test, NOT_RUN).verdicts, self.shapes)) ==
                    (mine.status, selftests.masked(mine.verdicts, self.shapes))]


SUITE = SelftestsSuite
