"""``x86lab vectors generate|run``: write portable test vectors, replay any vector files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List

from ground.engines import CATALOGUE
from x86lab.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError

RUNNER_ENGINES = [e.name for e in CATALOGUE if e.runner]  # those that step one case
SYSTEM_GROUPS = ("descriptors", "paging", "paging-user", "control", "privileged",
                 "fast-calls", "debug", "single-step", "breakpoints", "delivery",
                 "x87")  # --version 2

RUN_EXAMPLE = """example:
  x86lab vectors run --engine reference vectors/corpus
  x86lab vectors run --engine unicorn vectors/corpus/prot32/ADD_Ev_Gv.jsonl.gz --json

A failure that an entry of the engine's known-differences file explains (Unicorn's:
differential/known_divergences.toml) is listed as KNOWN with the entry's id, apart from
the failures; --no-known counts it as a failure.

exit status: 0 every vector passed or failed only as a known entry says; 1 a vector failed,
or none was replayed; 2 a file or line is malformed (listed; the other vectors still run),
or a usage error."""
if TYPE_CHECKING:
    from vectors.replay import FileResult

GENERATE_EXAMPLE = """example:
  x86lab vectors generate --forms 'ADD*' --per-form 20 --seed 1 --out /tmp/add-vectors
  x86lab vectors generate --oracle native --per-form 5 --draws 300 --seed 1 \\
      --out vectors/corpus-native

  x86lab vectors generate --version 2 --per-form 4 --seed 1 --out vectors/corpus-v2

--version 2: version-2 vectors of the system and x87 forms (groups descriptors, paging,
paging-user, control, privileged, fast-calls, debug, single-step, breakpoints, delivery,
x87; --groups
picks some), each with the oracle that decided it in its header: Unicorn where it agrees
with the reference, this CPU for x87, the reference for delivery through the IDT (no
oracle here can run it) and, by the SDM, where Unicorn departs from it as a listed bug
(decided-by-sdm); vectors/FORMAT.md and vectors/corpus.md say more.

--oracle agreement (default): cases on which Unicorn and the reference agree; Unicorn's
outcome is the expected one. --oracle native: cases on which they disagree (half of the
draws with a LOCK prefix), decided by this machine's CPU in an i386 process (prot32
only); the CPU's outcome is the expected one, and the file header names the CPU."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("vectors", help="write and replay portable test vectors",
                                   description=__doc__)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    run = verbs.add_parser("run", help="replay vector files on an engine", epilog=RUN_EXAMPLE,
                           formatter_class=raw)
    run.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                     help="vector files or folders (searched recursively)")
    run.add_argument("--engine", default="reference",
                     help=f"one of {', '.join(RUNNER_ENGINES)} (default reference)")
    run.add_argument("--name", help="replay only the vector with this name")
    run.add_argument("--json", action="store_true", help="print the results as JSON")
    run.add_argument("--no-known", action="store_true",
                     help="count a failure the engine's known-differences file explains as "
                          "a failure (default: listed apart as known)")
    run.set_defaults(handler=run_command)

    gen = verbs.add_parser("generate", help="write vectors from cases both engines agree on",
                           epilog=GENERATE_EXAMPLE, formatter_class=raw)
    gen.add_argument("--forms", default="*", metavar="PATTERN",
                     help="glob over form names (default: every implemented form)")
    gen.add_argument("--modes", default="real16,prot32", help="comma-separated modes")
    gen.add_argument("--per-form", type=int, default=20, metavar="N",
                     help="vectors per form and mode (default 20, as in the corpus)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--oracle", choices=("agreement", "native"), default="agreement",
                     help="who decides the expected outcome (see below)")
    gen.add_argument("--draws", type=int, default=300, metavar="N",
                     help="--oracle native: cases drawn per form (default 300)")
    gen.add_argument("--version", type=int, choices=(1, 2), default=1,
                     help="2: the system and x87 corpus in format version 2 (see below)")
    gen.add_argument("--groups", default=",".join(SYSTEM_GROUPS),
                     help="--version 2: comma-separated groups (default all)")
    gen.add_argument("--out", type=Path, required=True, metavar="DIR")
    gen.set_defaults(handler=generate_command)


def run_command(args: argparse.Namespace) -> int:
    from differential.known import KnownListError, vector_explainer
    from vectors.engines import EngineUnavailable, make_runner
    from vectors.files import VectorFileError, find_vector_files
    from vectors.replay import replay_files
    from vectors.report import print_results, progress_bar, results_json

    try:
        runner = make_runner(args.engine)
        files = find_vector_files(args.paths)
        known = None if args.no_known else vector_explainer(args.engine)
        with progress_bar(len(files), f"replaying on {args.engine}") as advance:
            results = replay_files(files, runner, args.engine, args.name, advance, known)
    except (EngineUnavailable, VectorFileError, KnownListError) as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        json.dump(results_json(results, args.engine, args.name, args.paths), sys.stdout,
                  indent=2)
        print()
    else:
        print_results(results, args.engine, args.name, args.paths)
    malformed = [m for r in results for m in r.malformed]
    if malformed:
        more = f" (and {len(malformed) - 1} more malformed)" if len(malformed) > 1 else ""
        print(f"x86lab: error: {malformed[0]}{more}", file=sys.stderr)
    return run_status(results)


def run_status(results: List[FileResult]) -> int:
    """2 when any line was malformed, even if vectors also failed: the run did not test all
    it was given and the input must be fixed first (failures are reported all the same);
    else 1 when a vector failed (known ones excepted) or none was replayed (an empty run is
    no pass); else 0."""
    if any(r.malformed for r in results):
        return EXIT_USAGE
    if any(r.failed for r in results) or not any(r.passed or r.known for r in results):
        return EXIT_FAILURE
    return EXIT_OK


def generate_command(args: argparse.Namespace) -> int:
    from differential.generate_vectors import GenerateError, generate, selected_forms
    from vectors.engines import EngineUnavailable
    from vectors.report import progress_bar

    if args.per_form < 1 or args.draws < 1:
        raise UsageError("--per-form and --draws must be at least 1")
    if args.version == 2:
        return _generate_v2(args)
    if args.oracle == "native":
        return _generate_native(args)
    modes = [m for m in args.modes.split(",") if m]
    try:
        total = len(selected_forms(args.forms, modes))
        with progress_bar(total, "generating") as advance:
            summary = generate(args.forms, modes, args.per_form, args.seed, args.out, advance)
    except (EngineUnavailable, GenerateError) as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {summary.vectors} vectors in {summary.files} files to {args.out} "
          f"({summary.disagreed} disagreeing cases left out)")
    if summary.empty:
        print(f"no agreeing case for {len(summary.empty)} form/mode pair(s): "
              f"{', '.join(summary.empty)}")
    return EXIT_OK


def _generate_native(args: argparse.Namespace) -> int:
    from differential.generate_vectors import GenerateError, selected_forms
    from differential.native_vectors import MODE, native_vectors
    from differential.runners.native_runner import StepperError
    from vectors.engines import EngineUnavailable
    from vectors.report import progress_bar

    try:
        total = len(selected_forms(args.forms, (MODE,)))
        with progress_bar(total, "asking the CPU") as advance:
            summary = native_vectors(args.forms, args.per_form, args.draws, args.seed,
                                     args.out, advance)
    except (EngineUnavailable, GenerateError, StepperError) as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {summary.vectors} vectors decided by this CPU in {summary.files} files "
          f"to {args.out}")
    for verdict, count in sorted(summary.verdicts.items(), key=lambda kv: -kv[1]):
        print(f"  {count:7} drawn cases: {verdict}")
    return EXIT_OK


def _generate_v2(args: argparse.Namespace) -> int:
    from differential.system_vectors import SystemGenerateError, generate_system
    from vectors.report import progress_bar

    groups = [g for g in args.groups.split(",") if g]
    try:
        with progress_bar(0, "generating version-2 vectors") as advance:
            summary = generate_system(groups, args.per_form, args.seed, args.out, advance)
    except SystemGenerateError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {summary.vectors} version-2 vectors in {summary.files} files to {args.out}")
    for group in groups:
        print(f"  {group}: {summary.by_group.get(group, 0)} vectors, "
              f"{summary.dropped.get(group, 0)} drawn cases left out (the oracles disagreed "
              "or the case could not be decided)")
    if summary.by_group.get("decided-by-sdm"):
        print(f"  decided-by-sdm: {summary.by_group['decided-by-sdm']} vectors where Unicorn "
              "differs as a listed bug (the reference, by the SDM, decided)")
    return EXIT_OK
