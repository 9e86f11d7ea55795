"""Run the engine x suite matrix: each suite prepares once (its oracle outputs), then each
engine runs every suite that applies to it (a guest boots once for all of them, with
every suite's files; a suite with a machine of its own runs beside it), then known
differences and each suite's cross-engine notes.

The matrix knows no engine and no suite by name: engines come from the catalogue
(``ground.engines``), suites from ``conformance/suites/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from conformance.findings import (
    UNDEFINED_FILE,
    SuiteResult,
    load_known,
    mark_known,
    mark_undefined,
)
from conformance.guest_session import GuestHolder
from conformance.suite import Options, Progress, Run, Suite
from conformance.suites import BY_SUITE
from differential.cpu_identity import this_cpu
from ground.engines import BOOTS_IMAGE, BY_NAME

__all__ = ["Options", "Report", "run_matrix"]


@dataclass
class Report:
    options: Options
    results: List[SuiteResult] = field(default_factory=list)
    wall_seconds: Dict[str, float] = field(default_factory=dict)
    oracle_cpu: Dict[str, object] = field(default_factory=lambda: this_cpu().as_dict())

    def new_findings(self) -> list:
        return [f for r in self.results for f in r.findings if f.is_new]


def run_matrix(options: Options, progress: Progress = lambda _m: None) -> Report:
    report = Report(options)
    run = Run(options, progress, report.wall_seconds)
    engines = [BY_NAME[name] for name in options.engines]
    chosen = sorted((BY_SUITE[name] for name in options.suites), key=lambda s: s.rank)
    suites: Dict[str, Suite] = {}
    for suite_class in chosen:  # in column order: a bad vector file fails before any build
        suite = suites[suite_class.name] = suite_class(run)
        if any(suite.applies(engine) for engine in engines):
            suite.prepare(engines)
    for engine in engines:
        wanted = [suites[s] for s in options.suites if suites[s].applies(engine)]
        report.results += [SuiteResult(engine.name, s, "n/a") for s in options.suites
                           if not suites[s].applies(engine)]
        if engine.can(BOOTS_IMAGE):
            in_guest = [suite for suite in wanted if not suite.own_machine]
            if in_guest:
                _run_guest(report, run, engine.name, in_guest)
            wanted = [suite for suite in wanted if suite.own_machine]
        for suite in wanted:
            with run.timer(f"{engine.name} {suite.name}"):
                report.results.append(suite.run_here(engine))
    cpu = this_cpu().describe()
    undefined = load_known(UNDEFINED_FILE)
    for engine in engines:
        findings = [f for r in report.results if r.engine == engine.name for f in r.findings]
        mark_undefined(findings, undefined, cpu)
        mark_known(findings, load_known(engine.name), cpu)
    for suite in suites.values():
        suite.finish(report.results)
    order = {(e, s): i for i, (e, s) in enumerate(
        (e, s) for e in options.engines for s in options.suites)}
    report.results.sort(key=lambda r: order.get((r.engine, r.suite), 0))
    return report


def _run_guest(report: Report, run: Run, engine: str, wanted: Sequence[Suite]) -> None:
    """Boot ``engine`` once with every wanted suite's files; run the suites in turn. A
    vector that kills the emulator costs a reboot and is reported; a suite that breaks
    the guest otherwise is an error cell; the suites after it are not lost."""
    files: Dict[str, bytes] = {}
    for suite in wanted:
        files.update(suite.guest_files())
    kernel = report.options.kernel
    # Console logs beside the reproducers: two runs at once must not share one log, since
    # the vectors suite reads it back to find the vector that killed an engine.
    holder = GuestHolder(engine, kernel, files, report.options.repro_dir / "consoles")
    start = time.monotonic()
    run.progress(f"{engine}: booting {kernel} with the suites' files")
    try:
        holder.boot()
    except Exception as exc:  # noqa: BLE001 - a boot failure is an error cell
        report.results += [SuiteResult(engine, s.name, "error",
                                       note=f"boot failed: {exc}"[:500]) for s in wanted]
        return
    report.wall_seconds[f"{engine} boot"] = round(time.monotonic() - start, 2)
    try:
        for index, suite in enumerate(wanted):
            run.progress(f"{engine}: {suite.name}")
            began = time.monotonic()
            try:
                result = suite.run_in_guest(holder)
            except Exception as exc:  # noqa: BLE001 - report and go on with the next suite
                result = SuiteResult(engine, suite.name, "error", note=str(exc)[:500])
                try:
                    holder.reboot()
                except Exception as boot_exc:  # noqa: BLE001 - the rest cannot run
                    report.results.append(result)
                    report.results += [SuiteResult(engine, s.name, "error",
                                                   note=f"reboot failed: {boot_exc}"[:500])
                                       for s in wanted[index + 1:]]
                    return
            report.wall_seconds[f"{engine} {suite.name}"] = round(time.monotonic() - began, 2)
            report.results.append(result)
    finally:
        holder.stop()
