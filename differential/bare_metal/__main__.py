"""python -m differential.bare_metal: the bare-metal cases on QEMU, Bochs and the reference
(and v86 when asked).

Each family of system-level cases (INT n through interrupt and trap gates at the same
and a higher privilege, faults with error codes delivered through the IDT, IRET to an
outer level, double faults, data-segment checks, hardware task switches, SYSENTER/
SYSEXIT, a triple fault) is built on the host, linked into one
Multiboot image (differential/bare_metal/runner.S) and run on every engine asked for;
the state each case leaves is printed on COM1 and compared field by field.

Where QEMU and Bochs differ, the engine that departs from the SDM has an entry (suite
"bare-metal") in conformance/known/ENGINE.toml with the SDM's text; a difference no entry
explains is new; conformance/known/undefined.toml excuses what the SDM leaves undefined.
QEMU and Bochs are the oracles, the reference and v86 the subjects.
Exit status: 0 every difference known, 1 a new one, 2 set-up error.

examples:
  python -m differential.bare_metal                      # qemu, bochs, reference
  python -m differential.bare_metal --engine qemu --show 'int-inner/*'
  python -m differential.bare_metal --families fault,double-fault --json out.json
  python -m differential.bare_metal --engine v86 --engine bochs --cases 'task/*'
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

from differential.bare_metal.cases import FAMILIES, all_cases
from differential.bare_metal.compare import CaseResult, judge, known_entries, run_cases
from differential.bare_metal.engines import ENGINES, EngineUnavailable, run_engine
from differential.bare_metal.image import ImageBuildError


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m differential.bare_metal",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", action="append", choices=ENGINES,
                        help="an engine to run (repeat; default: qemu, bochs, reference)")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help=f"comma-separated families (default: {','.join(FAMILIES)})")
    parser.add_argument("--cases", default="*", help="a glob on case names")
    parser.add_argument("--show", metavar="GLOB", help="print every field of these cases")
    parser.add_argument("--json", metavar="PATH", help="write the results and verdicts")
    parser.add_argument("--markdown", metavar="PATH",
                        help="write a table: each case, its verdict, the oracles that "
                             "decided it and the known entries used")
    parser.add_argument("--keep", metavar="DIR", help="keep the images built in DIR")
    args = parser.parse_args(argv)
    engines = args.engine or ["qemu", "bochs", "reference"]
    families = [f for f in args.families.split(",") if f]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown} (known: {', '.join(FAMILIES)})")
    cases = [c for c in all_cases(families) if fnmatch.fnmatchcase(c.name, args.cases)]
    if not cases:
        parser.error("no case matches")

    def log(text: str) -> None:
        print(text, file=sys.stderr)

    results: Dict[str, List[CaseResult]] = {}
    try:
        for engine in engines:
            log(f"{engine}: {len(cases)} cases")
            results[engine] = run_cases(engine, cases, lambda e, image: run_engine(e, image),
                                        Path(args.keep) if args.keep else None, log)
    except (EngineUnavailable, ImageBuildError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    known = {engine: known_entries(engine) for engine in engines}
    undefined = known_entries("undefined")
    verdicts = [judge(case.name, {e: results[e][i] for e in engines}, known, undefined)
                for i, case in enumerate(cases)]
    counts: Dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict.status] = counts.get(verdict.status, 0) + 1
        if verdict.status != "agree":
            print(f"{verdict.status:5} {verdict.name}  decided by: "
                  f"{'+'.join(verdict.decided_by) or '-'}")
            for left, right, fields, entry in verdict.differences:
                index = next(i for i, c in enumerate(cases) if c.name == verdict.name)
                shown = ", ".join(
                    f"{f} {_value(results[left][index], f)}/{_value(results[right][index], f)}"
                    for f in fields[:6])
                print(f"      {left} vs {right}: {shown}"
                      + (" ..." if len(fields) > 6 else "") + (f"  [{entry}]" if entry
                                                               else "  [NEW]"))
        if args.show and fnmatch.fnmatchcase(verdict.name, args.show):
            index = next(i for i, c in enumerate(cases) if c.name == verdict.name)
            for engine in engines:
                result = results[engine][index]
                fields = " ".join(f"{k}={v:#x}" for k, v in result.fields.items()
                                  if k.startswith("results."))
                print(f"  {engine:9} {verdict.name} {result.outcome} {fields}")
    families_seen: Dict[str, int] = {}
    for case in cases:
        families_seen[case.family] = families_seen.get(case.family, 0) + 1
    print(f"{len(cases)} cases ({', '.join(f'{k} {v}' for k, v in families_seen.items())}) "
          f"on {', '.join(engines)}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "engines": engines,
            "cases": [{"name": c.name, "family": c.family,
                       "results": {e: {"outcome": results[e][i].outcome,
                                       "fields": results[e][i].fields} for e in engines},
                       "verdict": verdicts[i].status,
                       "decided_by": list(verdicts[i].decided_by),
                       "differences": [list(d) for d in verdicts[i].differences]}
                      for i, c in enumerate(cases)]}, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(engines, cases, verdicts))
    return 1 if counts.get("new") else 0


def markdown_table(engines: List[str], cases: list, verdicts: list) -> str:
    """One row per case: family, case, verdict, deciding oracles, the entries used."""
    rows = ["| family | case | verdict | decided by | known entries |",
            "|---|---|---|---|---|"]
    for case, verdict in zip(cases, verdicts):
        labels = sorted({part for *_, label in verdict.differences
                         for part in label.split("; ") if part})
        rows.append(f"| {case.family} | `{case.name}` | {verdict.status} | "
                    f"{'+'.join(verdict.decided_by) or '-'} | {'; '.join(labels)} |")
    return (f"Bare-metal cases on {', '.join(engines)} "
            f"(`python -m differential.bare_metal --markdown PATH`).\n\n"
            + "\n".join(rows) + "\n")


def _value(result: CaseResult, name: str) -> str:
    if name == "outcome":
        return result.outcome
    value = result.fields.get(name)
    return "-" if value is None else f"{value:#x}"


if __name__ == "__main__":
    sys.exit(main())
