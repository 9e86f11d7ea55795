"""One module per top-level noun of the command line.

Each module defines ``register(subparsers)`` and adds its own sub-command(s); the CLI finds
them by listing this package, so adding a command never means editing ``cli.py``. Commands
stay thin: they parse arguments and call into ``images``, ``harness``, ``differential``,
``vectors`` or ``reference``, where the logic lives.
"""
