"""``x86lab report``: boot every engine x kernel, time the stages, run the shell checks,
compare with the baseline, and write the result as JSON and HTML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Sequence

from ground.engines import BOOTS_IMAGE, engines
from x86lab.cli import EXIT_FAILURE, EXIT_OK, UsageError

ENGINES = engines(BOOTS_IMAGE)  # every engine that boots an image (ground.engines)
KERNELS = ("tiny", "debian")
EXAMPLE = """examples:
  x86lab report --json out/report.json --html out/report.html
  x86lab report --engines v86 --kernels tiny --json r.json --html r.html --fail-on-regression
  x86lab report --json r.json --html r.html --update-baseline   # accept this run's figures

Stage times are compared as ratios to QEMU's tiny-kernel time to the prompt in the same
run (wall time on a shared machine is noisy; both engines feel the same load). A stage
slower than the baseline ratio by more than --tolerance, a new console warning, a failed
boot or a failed check is a regression; --fail-on-regression then exits 1."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="boot regression report (stage times, checks) as JSON and HTML",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default=",".join(ENGINES), metavar="LIST",
                        help=f"comma-separated engines (default {','.join(ENGINES)})")
    parser.add_argument("--kernels", metavar="LIST",
                        help="comma-separated kernels (default: tiny,debian, except the "
                        "reference, which boots tiny unless kernels are named)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the JSON report here")
    parser.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report here")
    parser.add_argument("--baseline", type=Path, metavar="PATH",
                        help="baseline file (default harness/baseline.json)")
    parser.add_argument("--tolerance", type=float, default=0.5, metavar="FRACTION",
                        help="allowed growth of a stage's ratio (default 0.5 = +50%%)")
    parser.add_argument("--memory", type=int, default=256, metavar="MIB",
                        help="guest RAM in MiB (default 256)")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 if any regression is found")
    parser.add_argument("--update-baseline", action="store_true",
                        help="write this run's figures to the baseline file")
    parser.set_defaults(handler=report_command)


def _names(raw: str, known: Sequence[str], option: str) -> List[str]:
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"{option} {raw!r}: choose from {', '.join(known)}")
    return names


def report_command(args: argparse.Namespace) -> int:
    from harness.report import BASELINE, build_report, update_baseline, write_report
    from images.errors import ImageError

    engines = _names(args.engines, ENGINES, "--engines")
    kernels = _names(",".join(KERNELS) if args.kernels is None else args.kernels, KERNELS,
                     "--kernels")
    if not (args.json or args.html):
        raise UsageError("name at least one output: --json PATH and/or --html PATH")
    if args.tolerance < 0:
        raise UsageError("--tolerance must be 0 or more")
    baseline = args.baseline or BASELINE
    log_dir = (args.json or args.html).parent / "consoles"
    try:
        report = build_report(engines, kernels, log_dir, args.memory, baseline, args.tolerance,
                              kernels_named=args.kernels is not None)
    except (ImageError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    write_report(report, args.json, args.html)
    for regression in report["regressions"]:
        print(f"regression: {regression['combo']} {regression['kind']}: "
              f"{regression['detail']}")
    for record in report["runs"]:
        instructions = record["instructions"].get("prompt")
        print(f"{record['id']}: prompt {record['marks'].get('prompt', 'n/a')} s"
              + (f", {instructions:,} instructions" if instructions else "")
              + f", checks {sum(c['passed'] for c in record['checks'])}/{len(record['checks'])}")
    if args.update_baseline:
        update_baseline(report, baseline)
        print(f"baseline written to {baseline}", file=sys.stderr)
    if args.fail_on_regression and report["regressions"]:
        return EXIT_FAILURE
    return EXIT_OK
