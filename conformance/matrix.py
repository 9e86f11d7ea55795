"""Run the engine x suite matrix: the oracle outputs once, then each engine (guests boot
once for all their suites), then known differences and cross-engine agreement."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from conformance import (
    busybox_suite,
    guest_vectors,
    native,
    program_suites,
    single_step,
    test_i386,
)
from conformance.findings import (
    APPLICABLE,
    UNDEFINED_FILE,
    SuiteResult,
    load_known,
    mark_known,
    mark_undefined,
)
from conformance.guest_session import GUEST_DIR, booted
from conformance.vector_findings import mark_unicorn_known, note_agreement, vector_suite_result
from conformance.vector_suite import (
    VectorResult,
    load_entries,
    run_suite,
    runner_step_all,
)
from differential.cpu_identity import this_cpu
from vectors.files import Entry, find_vector_files, read_vectors

Progress = Callable[[str], None]


@dataclass
class Options:
    engines: Sequence[str]
    suites: Sequence[str]
    kernel: str = "tiny"
    limit: Optional[int] = None  # vectors per form file; busybox applets (busybox_suite)
    busybox_limit: int = busybox_suite.LIMIT_SECONDS  # seconds per applet
    vector_paths: Sequence[Path] = ()  # replay these instead of the corpus
    repro_dir: Path = Path("conformance-repro")


@dataclass
class Report:
    options: Options
    results: List[SuiteResult] = field(default_factory=list)
    wall_seconds: Dict[str, float] = field(default_factory=dict)
    oracle_cpu: Dict[str, object] = field(default_factory=lambda: this_cpu().as_dict())

    def new_findings(self) -> list:
        return [f for r in self.results for f in r.findings if f.is_new]


def _entries(options: Options) -> List[Entry]:
    if options.vector_paths:
        found = find_vector_files(list(options.vector_paths))
        return [entry for path in found for entry in read_vectors(path)]
    return load_entries(options.limit)


class _Timer:
    def __init__(self, report: Report, name: str) -> None:
        self.report, self.name = report, name

    def __enter__(self) -> _Timer:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.report.wall_seconds[self.name] = round(time.monotonic() - self.start, 2)


def run_matrix(options: Options, progress: Progress = lambda _m: None) -> Report:
    report = Report(options)
    suites = set(options.suites)
    entries = _entries(options) if "vectors" in suites else []
    expected_i386 = ""
    guests = [e for e in options.engines if e in ("v86", "qemu")]
    if guests and "test-i386" in suites:
        with _Timer(report, "oracle test-i386 (native)"):
            progress("test-i386: building and running natively for the expected output")
            expected_i386 = program_suites.test_i386_expected()
    applets: List[str] = []
    expected_bb = busybox_suite.SuiteRun()
    if guests and "busybox" in suites:
        with _Timer(report, "oracle busybox (native)"):
            applets = busybox_suite.applets(options.limit)
            progress(f"busybox: running {len(applets)} applets' tests natively")
            expected_bb = busybox_suite.parse_run(busybox_suite.run_natively(
                applets, options.busybox_limit))
    by_engine: Dict[str, List[VectorResult]] = {}
    for engine in options.engines:
        wanted = [s for s in options.suites if s in APPLICABLE[engine]]
        report.results += [SuiteResult(engine, s, "n/a") for s in options.suites
                           if s not in APPLICABLE[engine]]
        if engine in ("v86", "qemu"):
            _run_guest(report, engine, wanted, entries, expected_i386, applets, expected_bb,
                       by_engine, progress)
        elif "vectors" in wanted:
            progress(f"{engine}: {len(entries)} vectors")
            step_all = native.run_native if engine == "native" else runner_step_all(engine)
            start = time.monotonic()
            by_engine[engine] = run_suite(entries, step_all)
            seconds = time.monotonic() - start
            report.wall_seconds[f"{engine} vectors"] = round(seconds, 2)
            report.results.append(vector_suite_result(engine, by_engine[engine], seconds,
                                                      options.repro_dir, options.kernel))
    note_agreement(report.results, by_engine)
    cpu = this_cpu().describe()
    undefined = load_known(UNDEFINED_FILE)
    for engine in options.engines:
        findings = [f for r in report.results if r.engine == engine for f in r.findings]
        mark_undefined(findings, undefined, cpu)
        mark_known(findings, load_known(engine), cpu)
    mark_unicorn_known(report.results, by_engine)
    for result in report.results:
        if result.status == "ran" and not result.oracle and (
                result.engine == "native" or result.suite in ("test-i386", "busybox")):
            result.oracle = f"this CPU: {cpu}"
    order = {(e, s): i for i, (e, s) in enumerate(
        (e, s) for e in options.engines for s in options.suites)}
    report.results.sort(key=lambda r: order.get((r.engine, r.suite), 0))
    return report


def _run_guest(report: Report, engine: str, wanted: Sequence[str], entries: List[Entry],
               expected_i386: str, applets: List[str], expected_bb: busybox_suite.SuiteRun,
               by_engine: Dict[str, List[VectorResult]], progress: Progress) -> None:
    """Boot ``engine`` once with every wanted suite's files; run the suites in turn. A
    vector that kills the emulator costs a reboot and is reported; a suite that breaks
    the guest otherwise is an error cell; the suites after it are not lost."""
    files: Dict[str, bytes] = {}
    if "vectors" in wanted:
        files.update(guest_vectors.guest_files(entries))
        files["tfprobe"] = single_step.binary().read_bytes()
    if "test-i386" in wanted:
        files.update(test_i386.guest_files())
    if "busybox" in wanted:
        files.update(busybox_suite.suite_files())
    kernel = report.options.kernel
    # Console logs beside the reproducers: two runs at once must not share one log, since
    # the vectors suite reads it back to find the vector that killed an engine.
    holder = _GuestHolder(engine, kernel, files, report.options.repro_dir / "consoles")
    start = time.monotonic()
    progress(f"{engine}: booting {kernel} with the suites' files")
    try:
        holder.boot()
    except Exception as exc:  # noqa: BLE001 - a boot failure is an error cell
        report.results += [SuiteResult(engine, s, "error", note=f"boot failed: {exc}"[:500])
                           for s in wanted]
        return
    report.wall_seconds[f"{engine} boot"] = round(time.monotonic() - start, 2)
    try:
        for suite in wanted:
            progress(f"{engine}: {suite}")
            began = time.monotonic()
            try:
                result = _guest_suite(holder, engine, suite, entries, expected_i386, applets,
                                      expected_bb, by_engine, report.options, progress)
            except Exception as exc:  # noqa: BLE001 - report and go on with the next suite
                result = SuiteResult(engine, suite, "error", note=str(exc)[:500])
                try:
                    holder.reboot()
                except Exception as boot_exc:  # noqa: BLE001 - the rest cannot run
                    report.results.append(result)
                    report.results += [SuiteResult(engine, s, "error",
                                                   note=f"reboot failed: {boot_exc}"[:500])
                                       for s in wanted[wanted.index(suite) + 1:]]
                    return
            report.wall_seconds[f"{engine} {suite}"] = round(time.monotonic() - began, 2)
            report.results.append(result)
    finally:
        holder.stop()


class _GuestHolder:
    """The current boot of one engine, rebooted when a vector or suite kills it."""

    def __init__(self, engine: str, kernel: str, files: Dict[str, bytes],
                 log_dir: Path) -> None:
        self.engine, self.kernel, self.files, self.log_dir = engine, kernel, files, log_dir
        self.stack = contextlib.ExitStack()
        self.guest = None

    def boot(self):
        self.guest = self.stack.enter_context(booted(self.engine, self.kernel, self.files,
                                                          self.log_dir))
        return self.guest

    def stop(self) -> None:
        self.stack.close()
        self.stack = contextlib.ExitStack()

    def reboot(self):
        self.stop()
        return self.boot()


def _vectors_in_guest(holder: _GuestHolder, entries: List[Entry], progress: Progress
                      ) -> List[VectorResult]:
    """Run the vectors; a vector that kills the emulator is reported and skipped."""
    def step_all(cases):
        return guest_vectors.run_vectors_in_guest(
            lambda: holder.guest, holder.reboot, cases,
            lambda message: progress(f"{holder.engine}: {message}"))

    return run_suite(entries, step_all)


def _guest_suite(holder: _GuestHolder, engine: str, suite: str, entries: List[Entry],
                 expected_i386: str, applets: List[str], expected_bb: busybox_suite.SuiteRun,
                 by_engine: Dict[str, List[VectorResult]], options: Options,
                 progress: Progress) -> SuiteResult:
    guest = holder.guest
    if suite == "vectors":
        start = time.monotonic()
        probe = guest.console.run(f"{GUEST_DIR}/tfprobe", timeout=120).output
        by_engine[engine] = _vectors_in_guest(holder, entries, progress)
        result = vector_suite_result(engine, by_engine[engine], time.monotonic() - start,
                                     options.repro_dir, options.kernel)
        trap = single_step.finding(engine, single_step.run_natively(), probe)
        if trap is not None:
            result.findings.insert(0, trap)
        return result
    if suite == "test-i386":
        return program_suites.run_test_i386(guest, engine, options.kernel, expected_i386,
                                            options.repro_dir / engine)
    if suite == "busybox":
        return program_suites.run_busybox(guest, engine, applets, expected_bb,
                                          options.busybox_limit)
    return program_suites.run_shell(guest, engine)
