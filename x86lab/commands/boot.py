"""``x86lab boot``: boot a Linux image on an engine; run one command or attach a terminal."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from x86lab.cli import EXIT_FAILURE, UsageError

if TYPE_CHECKING:
    from harness.guest import Guest

EXAMPLE = """examples:
  x86lab boot --engine qemu --kernel tiny --run 'uname -m'    # prints i686, exit 0
  x86lab boot --engine v86 --kernel debian --json              # stage times, instructions
  x86lab boot --engine v86 --kernel tiny                       # console; Ctrl-] quits

With --run the command's output is printed and its exit status becomes ours; with --json
stdout is one JSON document (stage times, v86 instruction counts, and with --run the
output and status). A boot that hangs or panics exits 1 with the console excerpt; a
missing engine or image tool exits 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "boot", help="boot Linux on v86 or QEMU; run a command or attach the console",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", required=True, choices=("v86", "qemu"))
    parser.add_argument("--kernel", required=True, choices=("tiny", "debian"))
    parser.add_argument("--run", metavar="CMD", help="run CMD in the guest's shell, then stop")
    parser.add_argument("--json", action="store_true", help="print stage times as JSON")
    parser.add_argument("--memory", type=int, default=256, metavar="MIB",
                        help="guest RAM in MiB (default 256)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S",
                        help="seconds CMD may run (default 600)")
    parser.set_defaults(handler=boot_command)


def boot_command(args: argparse.Namespace) -> int:
    from harness.console import BootFailure, CommandTimeout
    from harness.engines import EngineError
    from harness.guest import find_image, start_guest
    from images.errors import ImageError

    if args.memory < 16:
        raise UsageError(f"--memory {args.memory}: a guest needs at least 16 MiB")
    interactive = args.run is None and not args.json
    try:
        image = find_image(args.kernel)
        print(f"x86lab: booting {args.kernel} on {args.engine}...", file=sys.stderr)
        guest = start_guest(args.engine, image, args.kernel, args.memory, wait=not interactive)
    except (EngineError, ImageError) as exc:
        raise UsageError(str(exc)) from None
    except BootFailure as exc:
        print(f"x86lab: boot failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        if interactive:
            return _attach(guest)
        summary = guest.summary()
        status = 0
        if args.run is not None:
            try:
                # A subshell, so that `exit N` ends CMD with status N, not the guest's shell.
                result = guest.console.run(f"(\n{args.run}\n)", timeout=args.timeout)
            except CommandTimeout as exc:
                print(f"x86lab: {exc}", file=sys.stderr)
                return EXIT_FAILURE
            summary.update(output=result.output, status=result.status)
            status = result.status
            if not args.json:
                sys.stdout.write(result.output)
        if args.json:
            print(json.dumps(summary, indent=1))
        return status
    finally:
        guest.stop()


def _attach(guest: Guest) -> int:
    from harness.terminal import attach

    print("x86lab: console attached; Ctrl-] quits", file=sys.stderr)
    why = attach(guest.session)
    print(f"x86lab: {why}; console log: {guest.log_path}", file=sys.stderr)
    return 0
