"""``x86lab bench``: reference instructions/s (CPython, PyPy) and cases/s beside Unicorn's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ground.cache import REPO_ROOT
from x86lab.cli import EXIT_OK, UsageError

EXAMPLE = """example:
  x86lab bench --seconds 5 --json out/bench.json"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="reference speed beside Unicorn's (CPython and PyPy)",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="time per figure (default 3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures")
    parser.add_argument("--corpus", type=Path, action="append", metavar="PATH",
                        help="vectors whose cases are timed (default vectors/corpus)")
    parser.add_argument("--pypy", default="pypy3", help="PyPy command ('' to skip)")
    parser.set_defaults(handler=bench_command)


def bench_command(args: argparse.Namespace) -> int:
    from differential.speed import BenchError, measure, print_figures
    from vectors.engines import EngineUnavailable

    if args.seconds <= 0:
        raise UsageError("--seconds must be positive")
    corpus = args.corpus or [REPO_ROOT / "vectors" / "corpus"]
    try:
        figures = measure(args.seconds, corpus, pypy=args.pypy or None)
    except (BenchError, EngineUnavailable) as exc:
        raise UsageError(str(exc)) from None
    print_figures(figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return EXIT_OK
