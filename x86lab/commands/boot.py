"""``x86lab boot``: boot a Linux image on an engine; run one command or attach a terminal."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ground.engines import BOOTS_IMAGE, engines
from x86lab.cli import EXIT_FAILURE, UsageError

EXIT_INTERRUPTED = 130
"""As a shell reports a command ended by SIGINT (128 + 2)."""
INITCALL_WORDS = "initcall_debug loglevel=8"
"""initcall_debug prints each initcall at KERN_DEBUG; loglevel=8 lets the console show it
(the harness still quiets the console with ``dmesg -n 1`` at the prompt)."""

if TYPE_CHECKING:
    from harness.guest import Guest

EXAMPLE = """examples:
  x86lab boot --engine qemu --kernel tiny --run 'uname -m'    # prints i686, exit 0
  x86lab boot --engine v86 --kernel debian --json              # stage times, instructions
  x86lab boot --engine v86 --kernel tiny --json --initcalls    # + profile with initcalls
  x86lab boot --engine v86 --kernel tiny                       # console; Ctrl-] quits
  x86lab boot --engine reference --kernel tiny --run 'uname -a'   # our own PC, under PyPy

With --run the command's output is printed byte for byte and its exit status becomes
ours; a command the guest's shell cannot parse ends at once with the shell's message and
status (2). With --json stdout is one JSON document (stage times, instruction counts from
v86 and the reference (exact: its clock is virtual), the reference's interpreter; on
v86 a profile: wall, busy and idle time and instructions per boot phase, see
harness/boot_profile.py; with --run the output as text and as base64, and the status).
A boot that hangs or panics, or a command that times out, exits 1 with the console
excerpt; Ctrl-C stops the guest and exits 130. Every boot writes its own console log,
named whenever something fails. A missing engine or image tool exits 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "boot", help="boot Linux on an engine (v86, QEMU...); run a command or attach the console",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", required=True, choices=engines(BOOTS_IMAGE))
    parser.add_argument("--kernel", required=True, choices=("tiny", "debian"))
    parser.add_argument("--run", metavar="CMD", help="run CMD in the guest's shell, then stop")
    parser.add_argument("--json", action="store_true",
                        help="print stage times as JSON (the reference adds its interpreter)")
    parser.add_argument("--python", metavar="PATH",
                        help="the Python that runs --engine reference (default: pypy3 when "
                        "installed, else this one)")
    parser.add_argument("--memory", type=int, default=256, metavar="MIB",
                        help="guest RAM in MiB (default 256)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S",
                        help="seconds CMD may run, more than 0 (default 600)")
    parser.add_argument("--initcalls", action="store_true",
                        help=f"add '{INITCALL_WORDS}' to the kernel command line, so the "
                        "v86 profile in --json names the slowest initcalls (the kernel "
                        "then prints a few hundred more lines)")
    parser.set_defaults(handler=boot_command)


def boot_command(args: argparse.Namespace) -> int:
    from harness.console import BootFailure
    from harness.engines import EngineError
    from harness.guest import console_log_path, find_image, start_guest
    from images.errors import ImageError

    if args.memory < 16:
        raise UsageError(f"--memory {args.memory}: a guest needs at least 16 MiB")
    if not 0 < args.timeout < math.inf:
        raise UsageError(f"--timeout {args.timeout:g}: must be a positive number of seconds")
    if args.python:
        if args.engine != "reference":
            raise UsageError("--python chooses the interpreter of --engine reference only")
        os.environ["X86LAB_REFERENCE_PYTHON"] = args.python
    interactive = args.run is None and not args.json
    try:
        image = find_image(args.kernel)
        if args.initcalls:
            image = dataclasses.replace(image, cmdline=f"{image.cmdline} {INITCALL_WORDS}")
    except ImageError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print("x86lab: interrupted while preparing the image", file=sys.stderr)
        return EXIT_INTERRUPTED
    log_path = console_log_path(args.engine, args.kernel)
    print(f"x86lab: booting {args.kernel} on {args.engine} (console log: {log_path})...",
          file=sys.stderr, flush=True)
    try:
        guest = start_guest(args.engine, image, args.kernel, args.memory,
                            wait=not interactive, log_path=log_path)
    except EngineError as exc:
        raise UsageError(str(exc)) from None
    except BootFailure as exc:
        return _failed(f"boot failed: {exc}", log_path)
    except KeyboardInterrupt:  # start_guest has stopped the guest
        return _failed("interrupted; the guest was stopped", log_path, EXIT_INTERRUPTED)
    try:
        if interactive:
            return _attach(guest)
        return _run_and_report(guest, args)
    except KeyboardInterrupt:
        guest.stop()
        return _failed("interrupted; the guest was stopped", log_path, EXIT_INTERRUPTED)
    finally:
        guest.stop()


def _run_and_report(guest: Guest, args: argparse.Namespace) -> int:
    """Run --run (in a shell of its own, so that ``exit N`` ends it with N), print what
    it printed, byte for byte, and return its status; or print why it could not run."""
    from harness.console import CommandTimeout
    from harness.engines import EngineError

    summary = guest.summary()
    status = 0
    if args.run is not None:
        try:
            result = guest.console.run(os.fsencode(args.run), timeout=args.timeout,
                                       own_shell=True)
        except (CommandTimeout, EngineError) as exc:
            return _failed(str(exc), guest.log_path)
        summary.update(output=result.output, status=result.status, ended=result.ended,
                       output_base64=base64.b64encode(result.data).decode())
        status = result.status
        if not args.json:
            sys.stdout.flush()
            sys.stdout.buffer.write(result.data)
            sys.stdout.buffer.flush()
        if not result.ran:
            _failed(f"the guest's shell could not run the command ({result.ended} error,"
                    f" status {status})", guest.log_path)
        elif status != 0:
            _failed(f"the command exited with status {status}", guest.log_path)
    if args.json:
        print(json.dumps(summary, indent=1))
    return status


def _failed(what: str, log_path: Path, code: int = EXIT_FAILURE) -> int:
    """Say what went wrong and where the console log is, on stderr; return ``code``."""
    print(f"x86lab: {what}\nx86lab: console log: {log_path}", file=sys.stderr)
    return code


def _attach(guest: Guest) -> int:
    from harness.terminal import attach

    print("x86lab: console attached; Ctrl-] quits", file=sys.stderr)
    why = attach(guest.session)
    print(f"x86lab: {why}; console log: {guest.log_path}", file=sys.stderr)
    return 0
