"""``x86lab fuzz``: a differential campaign of the reference against Unicorn."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List

from x86lab.cli import EXIT_FAILURE, EXIT_OK, UsageError
from x86lab.commands.bench import STDOUT, add_pipeline_options, pipeline

EXAMPLE = """example:
  x86lab fuzz --minutes 10 --jobs 2 --out out/fuzz --seed 7
  x86lab fuzz --minutes 10 --jobs 2 --out out/fuzz --seed 7 --resume   # continue it
  x86lab fuzz --forms 'SH*' --minutes 1 --out out/shifts                # only shifts
  x86lab fuzz --replay out/fuzz/divergences/ADD_Ev_Gv-prot32-0123abcd.json
  x86lab fuzz --bench --json               # alias of: x86lab bench --pipeline --json -
  x86lab fuzz --campaign redis://HOST:6379/0 --jobs 2 --minutes 30      # join a cluster
  x86lab fuzz status --campaign redis://HOST:6379/0 [--once]
  x86lab fuzz report --campaign redis://HOST:6379/0 --out out/cluster
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fuzz", help="differential campaign: reference vs Unicorn, random cases",
        description="Run random cases (FORMS instances and random prefixed bytes) on the "
                    "reference and on Unicorn, with and without memory hooks; keep every "
                    "divergence as a replayable JSON file; write report.json/report.md.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", nargs="?", choices=("status", "report"),
                        help="with --campaign URL: show the cluster (status) or write its "
                             "report (report --out DIR)")
    parser.add_argument("--minutes", type=float, default=1.0, help="wall time (default 1)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: one per core)")
    parser.add_argument("--out", type=Path, help="campaign directory (state, divergences, "
                                                 "report)")
    parser.add_argument("--seed", type=int, default=1, help="campaign seed (default 1)")
    parser.add_argument("--forms", default="*", help="glob on form names (default: all, "
                                                     "plus random bytes)")
    parser.add_argument("--resume", action="store_true", help="continue the campaign in --out")
    parser.add_argument("--replay", type=Path, nargs="+", metavar="FILE",
                        help="rerun saved divergence files instead of fuzzing; exit 1 "
                             "while one still diverges unexplained (agreeing or "
                             "known cases pass)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--bench", action="store_true",
                        help="alias of 'x86lab bench --pipeline' (with --json: 'bench "
                             "--pipeline --json -'): the campaign pipeline's cases/s per core "
                             "beside Unicorn alone and the reference alone")
    add_pipeline_options(parser, seed=False)
    parser.add_argument("--campaign", metavar="URL",
                        help="redis://HOST:PORT/N: join (or inspect) a campaign shared by "
                             "workers on several machines")
    parser.add_argument("--once", action="store_true", help="status: print once and exit")
    parser.add_argument("--known", type=Path, metavar="FILE",
                        help="the known-differences list a new campaign pins (default "
                             "differential/known_divergences.toml); a campaign judges with "
                             "the list it started with to its end, even when the file "
                             "changes: --resume and later joiners use the pinned one")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.replay:
        return _replay(args.replay)
    if args.bench:
        return pipeline(args.batches, args.seed, args.mix, STDOUT if args.json else None)
    if args.action and not args.campaign:
        raise UsageError(f"fuzz {args.action} needs --campaign redis://HOST:PORT/N")
    if args.campaign:
        from x86lab.fuzz_cluster import run_cluster

        return run_cluster(args)
    if args.out is None:
        raise UsageError("--out DIR is required (where the campaign keeps its state)")
    if args.jobs < 1 or args.minutes <= 0:
        raise UsageError("--jobs must be at least 1 and --minutes above 0")
    from differential.campaign import CampaignError, Plan, prepare, testable_forms
    from differential.campaign_files import CampaignLock, usable_directory
    from differential.fuzz import cases_so_far, run_campaign
    from differential.known import KnownListError, PinnedList
    from differential.progress import CampaignDisplay
    from differential.suite import checkers

    try:  # checked before the live display starts, so a problem is a one-line error
        known = PinnedList.read(args.known) if args.known else None
    except KnownListError as exc:
        raise UsageError(f"--known: {exc}") from None
    try:
        testable_forms(args.forms)  # before anything is created in --out
        usable_directory(args.out)
        lock = CampaignLock(args.out).acquire()
    except CampaignError as exc:
        raise UsageError(str(exc)) from exc
    try:
        try:
            plan = prepare(args.out, Plan(seed=args.seed, jobs=args.jobs, forms=args.forms),
                           args.resume, known)
        except CampaignError as exc:
            raise UsageError(str(exc)) from exc
        print(f"x86lab fuzz: seed {args.seed}, {args.jobs} workers, forms {args.forms!r}, "
              f"out {args.out}", file=sys.stderr)
        if known is not None and known.digest != plan.known_sha256:
            print(f"x86lab fuzz: judging with the known list the campaign pinned when it "
                  f"started ({args.out / 'known_divergences.toml'}), not --known "
                  f"{args.known}", file=sys.stderr)
        with CampaignDisplay(args.jobs, args.minutes) as display:
            display.baseline(cases_so_far(args.out, args.jobs))
            # the directory is prepared: run_campaign reopens it (and replays first)
            report = run_campaign(args.out, plan, args.minutes, True, checkers,
                                  on_message=display.handle,
                                  say=lambda line: display.console.print(line), lock=lock)
    finally:
        lock.release()
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{report['cases']} cases, {report['cases_per_second_per_core']:.0f} cases/s "
              f"per core; {report['divergences']} divergences ({report['engine_crashes']} "
              f"engine crashes) in {report['divergent_forms']} forms; known hits "
              f"{sum(report['known_hits'].values())}; report: {args.out / 'report.md'}")
    for line in report["worker_failures"]:
        print(f"x86lab fuzz: {line}", file=sys.stderr)
    if report["worker_failures"]:
        return EXIT_FAILURE
    return EXIT_FAILURE if report["divergences"] else EXIT_OK


def _replay(files: List[Path]) -> int:
    from differential.corpus import CorpusError
    from differential.replay import replay
    from differential.suite import checkers

    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise UsageError(f"no such divergence file: {', '.join(missing)}")
    try:
        return EXIT_FAILURE if replay(files, checkers()) else EXIT_OK
    except CorpusError as exc:
        raise UsageError(str(exc)) from exc


