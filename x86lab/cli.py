"""The ``x86lab`` command: ``x86lab NOUN [VERB] ...``.

Exit status: 0 when all is well, 1 when the tool found a failure (a divergence, a failed
check, a regression), 2 for a usage or set-up error.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Optional, Sequence

from x86lab import commands

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with how the tool was called or set up; printed in one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="x86lab",
        description="Conformance test suite and readable reference IA-32 emulator.",
        epilog="Run 'x86lab COMMAND --help' for a command's options and an example.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(handler(args) or 0)
    except UsageError as exc:
        print(f"x86lab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # As ``python -m x86lab.cli`` this file runs as __main__, a second copy of the module
    # whose UsageError is not the one the commands raise (that made every usage error a
    # traceback with exit 1): run the imported module's main.
    from x86lab.cli import main as imported_main

    sys.exit(imported_main())
