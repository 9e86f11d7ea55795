"""The vector corpus (or the files named with ``--vectors``): each engine's outcome of
every vector against the expected one. Booted engines run them through the user-mode
stepper in the guest (after a probe of their single-step trap); the others step them in
this process. At the end each finding says which engines agree with whom."""

from __future__ import annotations

import time
from typing import Dict, List, Sequence

from conformance import guest_vectors, single_step
from conformance.findings import SuiteResult
from conformance.guest_session import GUEST_DIR, GuestHolder
from conformance.suite import Suite
from conformance.vector_findings import mark_unicorn_known, note_agreement, vector_suite_result
from conformance.vector_suite import VectorResult, load_entries, run_suite, runner_step_all
from differential.cpu_identity import this_cpu
from ground.engines import BOOTS_IMAGE, GUEST_VECTORS, STEPS_CASES, EngineEntry, load
from vectors.files import Entry, find_vector_files, read_vectors


class VectorsSuite(Suite):
    name = "vectors"
    rank = 0
    needs = ()

    @classmethod
    def applies(cls, engine: EngineEntry) -> bool:
        return engine.can(GUEST_VECTORS) or engine.can(STEPS_CASES)

    def prepare(self, engines: Sequence[EngineEntry]) -> None:
        options = self.run.options
        self.by_engine: Dict[str, List[VectorResult]] = {}
        if options.vector_paths:
            found = find_vector_files(list(options.vector_paths))
            self.entries: List[Entry] = [e for path in found for e in read_vectors(path)]
        else:
            self.entries = load_entries(options.limit)

    def guest_files(self) -> Dict[str, bytes]:
        return {**guest_vectors.guest_files(self.entries),
                "tfprobe": single_step.binary().read_bytes()}

    def run_in_guest(self, holder: GuestHolder) -> SuiteResult:
        engine = holder.engine
        start = time.monotonic()
        probe = holder.guest.console.run(f"{GUEST_DIR}/tfprobe", timeout=120).output

        def step_all(cases):  # a vector that kills the emulator is reported and skipped
            return guest_vectors.run_vectors_in_guest(
                lambda: holder.guest, holder.reboot, cases,
                lambda message: self.run.progress(f"{engine}: {message}"))

        self.by_engine[engine] = run_suite(self.entries, step_all)
        result = self._result(engine, time.monotonic() - start)
        trap = single_step.finding(engine, single_step.run_natively(), probe)
        if trap is not None:
            result.findings.insert(0, trap)
        return result

    def run_here(self, engine: EngineEntry) -> SuiteResult:
        self.run.progress(f"{engine.name}: {len(self.entries)} vectors")
        step_all = load(engine.batch) if engine.batch else runner_step_all(engine.name)
        start = time.monotonic()
        self.by_engine[engine.name] = run_suite(self.entries, step_all)
        result = self._result(engine.name, time.monotonic() - start)
        if engine.can(GUEST_VECTORS) and not engine.can(BOOTS_IMAGE):
            # The stepper ran on this machine: its outcomes are this CPU's own.
            result.oracle = f"this CPU: {this_cpu().describe()}"
        return result

    def _result(self, engine: str, seconds: float) -> SuiteResult:
        options = self.run.options
        return vector_suite_result(engine, self.by_engine[engine], seconds,
                                   options.repro_dir, options.kernel)

    def finish(self, results: List[SuiteResult]) -> None:
        note_agreement(results, self.by_engine)
        mark_unicorn_known(results, self.by_engine)


SUITE = VectorsSuite
