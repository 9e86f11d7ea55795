"""Vector results -> findings: one per (engine, form), with a reproducer a maintainer of
that engine can run (a vector file holding just the first failing case, and the command),
and which other engines agree with the expected outcome or with this engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Tuple

from conformance.findings import Finding, SuiteResult
from conformance.stepper import comparable_case
from conformance.vector_suite import VectorResult
from differential.operands import disassembly
from ground.compare import compare, summary
from vectors.files import write_vectors
from vectors.format import FORMAT_NAME, FORMAT_VERSION

UD_VECTOR = 6
Key = Tuple[str, int]  # (vector file, line): one vector


def _key(result: VectorResult) -> Key:
    return (str(result.entry.path), result.entry.line)


def _headline(result: VectorResult, engine: str) -> str:
    got = result.outcome.exception if result.outcome else None
    line = summary(result.differences, "expected", engine)
    at_start = result.outcome is not None and \
        result.outcome.regs.get("eip") == result.entry.case.regs.get("eip")
    if got is not None and got.vector == UD_VECTOR and at_start and \
            result.entry.expected.exception is None:
        return f"{engine} lacks this instruction (#UD where the CPU executes it); {line}"
    return line


def _write_case(folder: Path, engine: str, result: VectorResult) -> Path:
    case = result.entry.case
    path = folder / engine / f"{case.mode}-{case.form or 'case'}.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "form": case.form,
              "mode": case.mode, "generator": f"x86lab conformance reproducer for {engine}"}
    write_vectors(path, header, [(case, result.entry.expected)])
    return path


def _finding(engine: str, form: str, results: List[VectorResult], repro_dir: Path,
             kernel: str) -> Finding:
    """One form's differing vectors as a finding, the first one as its reproducer."""
    first = results[0]
    case = first.entry.case
    path = _write_case(repro_dir, engine, first)
    summary = (f"{engine} itself crashed on it (the emulator exited)"
               if first.reason.startswith("killed-the-engine")
               else f"the stepper died on it ({first.reason})" if first.status == "crashed"
               else _headline(first, engine))
    return Finding(engine, "vectors", form, len(results), summary,
                   {"vector": case.name, "mode": case.mode, "bytes": case.code.hex(" "),
                    "disassembly": disassembly(case.mode, case.code),
                    "initial_regs": {k: f"{v:#x}" for k, v in case.regs.items()},
                    "differences": [d.render("expected", engine) for d in first.differences],
                    "file": str(path),
                    "command": f"x86lab conformance --engines {engine} --suites vectors "
                               f"--kernel {kernel} --vectors {path} --json out.json "
                               "--html out.html"})


def reason_class(reason: str) -> str:
    """A reason why user mode cannot express a vector, without its detail in brackets
    ("privileged at CPL3 (raises #GP ...)" -> "privileged at CPL3"), as a table column."""
    return reason.split(" (")[0].split(":")[0].replace("-", " ").strip() or "unknown"


def vector_suite_result(engine: str, results: List[VectorResult], seconds: float,
                        repro_dir: Path, kernel: str) -> SuiteResult:
    """Tally and group one engine's vector results."""
    counts: Dict[str, int] = {}
    groups: Dict[str, List[VectorResult]] = {}
    undefined: Dict[str, List[VectorResult]] = {}
    per_form: Dict[str, Dict[str, int]] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
        if result.stop == "sentinel":
            counts["stopped_by_sentinel"] = counts.get("stopped_by_sentinel", 0) + 1
        form = f"{result.entry.case.mode}/{result.entry.case.form}"
        tally = per_form.setdefault(form, {"vectors": 0, "expressible": 0})
        tally["vectors"] += 1
        tally["expressible"] += result.status != "inexpressible"
        if result.status == "inexpressible":
            why = reason_class(result.reason)
            tally[why] = tally.get(why, 0) + 1
        if result.status in ("fail", "crashed"):
            groups.setdefault(result.entry.case.form or "?", []).append(result)
        elif result.status == "undefined":
            undefined.setdefault(result.entry.case.form or "?", []).append(result)
    findings = []
    for form, differing in sorted(undefined.items()):
        findings.append(_finding(engine, form, differing, repro_dir, kernel))
        fields = sorted({d.field for r in differing for d in r.differences})
        findings[-1].undefined = (
            f"The SDM leaves {', '.join(fields)} undefined for these executions (each "
            "vector's undefined_flags/undefined_dest, from the table's rules and the "
            "instruction's Flags Affected section); the vector's value is Unicorn's.")
    for form, failed in sorted(groups.items()):
        findings.append(_finding(engine, form, failed, repro_dir, kernel))
    ran = sum(counts.get(status, 0) for status in ("pass", "fail", "undefined", "crashed"))
    return SuiteResult(engine, "vectors", "ran", counts.get("pass", 0), ran, round(seconds, 2),
                       counts, findings, detail=per_form)


def note_agreement(suite_results: List[SuiteResult],
                   by_engine: Mapping[str, List[VectorResult]]) -> None:
    """For each vector finding, which engines pass that vector and which got the same
    outcome as the engine that failed it."""
    outcomes = {engine: {_key(r): r for r in results} for engine, results in by_engine.items()}
    for suite in suite_results:
        for finding in suite.findings:
            if suite.suite != "vectors" or suite.engine not in outcomes:
                continue
            mine = next((r for r in by_engine[suite.engine]
                         if r.entry.case.name == finding.reproducer.get("vector")), None)
            if mine is None or mine.outcome is None:
                continue
            passing, same = [], []
            for engine, table in outcomes.items():
                other = table.get(_key(mine))
                if engine == suite.engine or other is None or other.outcome is None:
                    continue
                if other.status == "pass":
                    passing.append(engine)
                elif not compare(comparable_case(mine.entry.case), mine.outcome, other.outcome):
                    same.append(engine)
            finding.reproducer["agree_with_expected"] = passing
            finding.reproducer["agree_with_this_engine"] = same


def mark_unicorn_known(suite_results: List[SuiteResult],
                       by_engine: Mapping[str, List[VectorResult]]) -> None:
    """The vector findings of an engine whose known list is the differential campaign's
    (``differential/known_divergences.toml``: Unicorn's, one list, not a second copy in
    ``known/``) where every differing vector is one of its listed bugs. The native corpus
    is made of exactly such cases."""
    from differential.known import DEFAULT_PATH, find_known, load_known
    from ground.compare import Difference
    from ground.engines import BY_NAME

    listed = load_known()
    campaign_file = DEFAULT_PATH.relative_to(DEFAULT_PATH.parent.parent).as_posix()
    for suite in suite_results:
        entry_of = BY_NAME.get(suite.engine)
        if suite.suite != "vectors" or entry_of is None or \
                entry_of.known_file != campaign_file:
            continue
        engine = suite.engine
        known = [k for k in listed if not k.wrong]  # Unicorn's own bugs, not the set-up's
        results = by_engine.get(engine, [])
        for finding in suite.findings:
            if not finding.is_new:
                continue
            ids = set()
            for result in results:
                if (result.entry.case.form or "?") != finding.group or \
                        result.status not in ("fail", "crashed"):
                    continue
                case = result.entry.case
                if result.outcome is None:
                    differences = [Difference("engine", "crashed", result.reason)]
                    notes: Mapping[str, str] = {}
                else:
                    differences = compare(case, result.outcome, result.entry.expected)
                    notes = result.outcome.notes
                entry = find_known(known, case, differences, notes, engine)
                if entry is None:
                    break
                ids.add(entry.id)
            else:
                if ids:
                    finding.known = (f"{engine.capitalize()} bug(s) listed in "
                                     f"{campaign_file}: {', '.join(sorted(ids))}")
