"""The bare-metal oracle of system-level behaviour (``differential/bare_metal``) as a
suite: each engine runs the Multiboot image's cases (IDT delivery, privilege changes,
task switches, virtual-8086 mode, paging...) on a machine of its own, not in the Linux
guest, and each case is compared with what the oracles answer.

QEMU and Bochs are the oracles, run once in ``prepare``. A case's answer is that of the
oracles no known entry finds wrong (``compare.judge`` over the two: the engine that
departs from the SDM has a ``bare-metal`` entry in ``conformance/known/ENGINE.toml``).
An engine passes a case when its result equals that answer; otherwise the case is a
finding (group: the case name; summary: the differing fields, "; "-separated, as the
known entries' ``fields`` globs read them), known when the engine's own entries cover
every field, and "undefined" when ``known/undefined.toml`` says the SDM leaves them
open (a #DF's saved state). This is the same judgement as
``python -m differential.bare_metal``; the suite reports it as a matrix cell.
"""

from __future__ import annotations

import time
from typing import Dict, List, Sequence, Tuple

from conformance.findings import Finding, SuiteResult
from conformance.suite import Suite
from differential.bare_metal import compare
from differential.bare_metal import engines as bare_engines
from differential.bare_metal.cases import all_cases
from differential.bare_metal.compare import CaseResult, differing, explained, known_entries
from ground.engines import BOOTS_IMAGE, EngineEntry

REPRODUCE = ("python -m differential.bare_metal --engine {engine} --engine qemu --engine "
             "bochs --cases '{case}' --show '*'")


class BareMetalSuite(Suite):
    name = compare.SUITE
    rank = 5
    needs = (BOOTS_IMAGE,)
    own_machine = True

    @classmethod
    def applies(cls, engine: EngineEntry) -> bool:
        return super().applies(engine) and engine.name in bare_engines.ENGINES

    def prepare(self, engines: Sequence[EngineEntry]) -> None:
        """The cases, the oracles' results and, per case, the oracles that decide it."""
        self.cases = all_cases()
        self.by_engine: Dict[str, List[CaseResult]] = {}
        self.oracle_error = ""
        try:
            for oracle in compare.ORACLES:
                self.by_engine[oracle] = self._run(oracle)
        except (bare_engines.EngineUnavailable, RuntimeError) as exc:
            self.oracle_error = f"oracle unavailable: {exc}"[:500]
            return
        known = {oracle: known_entries(oracle) for oracle in compare.ORACLES}
        undefined = known_entries("undefined")
        self.decided: List[Tuple[str, ...]] = [
            compare.judge(case.name, {o: self.by_engine[o][i] for o in compare.ORACLES},
                          known, undefined).decided_by
            for i, case in enumerate(self.cases)]

    def _run(self, engine: str) -> List[CaseResult]:
        folder = self.run.options.repro_dir / compare.SUITE / engine  # images: reproducers
        folder.mkdir(parents=True, exist_ok=True)
        self.run.progress(f"{engine}: {compare.SUITE} ({len(self.cases)} cases)")
        return compare.run_cases(engine, self.cases, bare_engines.run_engine, folder,
                                 progress=self.run.progress)

    def run_here(self, engine: EngineEntry) -> SuiteResult:
        if self.oracle_error:
            return SuiteResult(engine.name, compare.SUITE, "error", note=self.oracle_error)
        start = time.monotonic()
        try:
            mine = self.by_engine.get(engine.name) or self._run(engine.name)
        except (bare_engines.EngineUnavailable, RuntimeError) as exc:
            return SuiteResult(engine.name, compare.SUITE, "error", note=str(exc)[:500])
        own = known_entries(engine.name)
        undefined = known_entries("undefined")
        passed, findings, counts = 0, [], {"undefined": 0}
        for index, (case, result) in enumerate(zip(self.cases, mine)):
            decided = self.decided[index]
            if engine.name in decided or any(
                    not differing(result, self.by_engine[oracle][index]) for oracle in decided):
                passed += 1
                continue
            basis = decided[0] if decided else compare.ORACLES[-1]
            fields = differing(result, self.by_engine[basis][index])
            left = [f for f in fields if not explained(undefined, case.name, [f])]
            if not left:
                counts["undefined"] += 1
                continue
            finding = Finding(engine.name, compare.SUITE, case.name, 1, "; ".join(left), {
                "oracle": basis, "command": REPRODUCE.format(engine=engine.name,
                                                             case=case.name)})
            covering = explained(own, case.name, left)
            if covering:  # several entries may share the fields of one case
                finding.known = " | ".join(entry.evidence for entry in covering)
            findings.append(finding)
        return SuiteResult(engine.name, compare.SUITE, "ran", passed, len(self.cases),
                           round(time.monotonic() - start, 2), counts, findings,
                           oracle="QEMU and Bochs where no known entry finds them wrong "
                                  "(differential/bare_metal)")


SUITE = BareMetalSuite
