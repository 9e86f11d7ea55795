"""``x86lab conformance``: the same tests on every engine (v86, QEMU, this machine's CPU,
Unicorn, the reference), one matrix, every difference with a reproducer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Sequence

from x86lab.cli import EXIT_FAILURE, UsageError

EXAMPLE = """examples:
  x86lab conformance --engines native,unicorn,reference --suites vectors \\
      --json conf.json --html conf.html                   # no boot; about a minute
  x86lab conformance --limit 2 --json conf.json --html conf.html   # bounded, all engines
  x86lab conformance --engines qemu --suites vectors --vectors repro/qemu/prot32-ENTER.jsonl.gz \\
      --json out.json --html out.html                     # replay one reproducer

Suites: vectors (the corpus, or --vectors files), test-i386 (QEMU's tests/tcg/i386 program,
expected output from this CPU), busybox (BusyBox's testsuite, expected verdicts from this
CPU), shell (the harness's checks). unicorn and reference run only the vectors; the
others are n/a. Known differences: conformance/known/ENGINE.toml. Exit 1 when a difference
not listed there appears, 0 otherwise, 2 for a usage or set-up error."""


def _names(text: str, known: Sequence[str], what: str) -> List[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"--{what} {text!r}: unknown {', '.join(unknown) or '(empty)'}; "
                         f"choose from {','.join(known)}")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    from conformance.suites import ENGINES, SUITES

    parser = subparsers.add_parser(
        "conformance", help="run the suites on every engine; matrix and reproducers",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default=",".join(ENGINES), metavar="LIST",
                        help=f"comma-separated, from {','.join(ENGINES)} (default: all)")
    parser.add_argument("--suites", default=",".join(SUITES), metavar="LIST",
                        help=f"comma-separated, from {','.join(SUITES)} (default: all)")
    parser.add_argument("--kernel", default="tiny", choices=("tiny", "debian"))
    parser.add_argument("--limit", type=int, metavar="N",
                        help="bound the run: vectors: the first N of each form file; busybox: "
                             "the N applets with the most tests (among those Debian builds); "
                             "test-i386, selftests and shell always run whole")
    from conformance.busybox_suite import LIMIT_SECONDS

    parser.add_argument("--busybox-limit", type=int, default=LIMIT_SECONDS, metavar="SECONDS",
                        help="time limit of each busybox applet's tests (default: "
                             f"{LIMIT_SECONDS}). An "
                             "applet cut off by it is a difference only if the engine, at "
                             "the slowdown it showed on the other applets, should have "
                             "finished in time (a hang); otherwise it is listed as slow")
    parser.add_argument("--vectors", type=Path, action="append", default=[], metavar="PATH",
                        help="vector files or folders to run instead of the corpus")
    parser.add_argument("--json", type=Path, required=True, metavar="PATH")
    parser.add_argument("--html", type=Path, required=True, metavar="PATH")
    parser.add_argument("--repro-dir", type=Path, metavar="DIR",
                        help="where reproducer vector files go (default: beside --json)")
    parser.set_defaults(handler=conformance_command)


def conformance_command(args: argparse.Namespace) -> int:
    from conformance.matrix import Options, run_matrix
    from conformance.report import write_html, write_json
    from conformance.sources import SourceError
    from conformance.suites import ENGINES, SUITES
    from differential.runners.native_runner import StepperError
    from vectors.files import VectorFileError

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: give a positive number")
    if args.busybox_limit < 1:
        raise UsageError(f"--busybox-limit {args.busybox_limit}: give a positive number")
    options = Options(
        engines=_names(args.engines, ENGINES, "engines"),
        suites=_names(args.suites, SUITES, "suites"),
        kernel=args.kernel, limit=args.limit, busybox_limit=args.busybox_limit,
        vector_paths=args.vectors,
        repro_dir=args.repro_dir or args.json.with_name(args.json.stem + "-repro"))
    try:
        report = run_matrix(options, lambda message: print(f"x86lab: {message}",
                                                           file=sys.stderr))
    except (SourceError, StepperError, VectorFileError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    write_json(report, args.json)
    write_html(report, args.html)
    for engine in options.engines:
        cells = [f"{r.suite}={r.cell()}" for r in report.results if r.engine == engine]
        print(f"{engine:10} " + "  ".join(cells))
    for key, seconds in report.wall_seconds.items():
        print(f"  {key}: {seconds:.1f} s")
    new = report.new_findings()
    undefined = [f for r in report.results for f in r.findings if f.kind == "undefined"]
    for result in report.results:
        groups = [f for f in result.findings if f.kind == "undefined"]
        if groups:
            print(f"undefined by the SDM, differing: {result.engine} {result.suite}: "
                  f"{len(groups)} group(s), {sum(f.count for f in groups)} results "
                  f"({', '.join(f.group for f in groups[:6])}{', ...' if len(groups) > 6 else ''})")
    for finding in new:
        print(f"NEW {finding.engine} {finding.suite} {finding.group} ({finding.count}): "
              f"{finding.summary[:160]}")
    print(f"oracle CPU: {report.oracle_cpu['described']}")
    print(f"{len(new)} new difference group(s), {len(undefined)} undefined by the SDM "
          f"(this CPU and the engine differ); report: {args.html}")
    return EXIT_FAILURE if new else 0
