"""Attaching the user's terminal to a guest's serial console, like ``qemu -nographic``.

Raw mode so that ^C, arrows and tab go to the guest, not to us; Ctrl-] (as in telnet)
detaches. When stdin is not a terminal the bytes are simply piped through.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import tty

from harness.engines import Session, SessionClosed

ESCAPE = b"\x1d"  # Ctrl-]


def attach(session: Session, stdin_fd: int = 0, stdout_fd: int = 1) -> str:
    """Pass bytes both ways until Ctrl-], end of input or the engine exits; says which."""
    saved = termios.tcgetattr(stdin_fd) if os.isatty(stdin_fd) else None
    if saved is not None:
        tty.setraw(stdin_fd)
    try:
        while True:
            try:
                output = session.read(0.02)
            except SessionClosed:
                return "the engine exited"
            if output:
                os.write(stdout_fd, output)
            ready, _, _ = select.select([stdin_fd], [], [], 0)
            if not ready:
                continue
            typed = os.read(stdin_fd, 4096)
            if not typed:
                return "end of input"
            if ESCAPE in typed:
                session.write(typed[: typed.index(ESCAPE)])
                return "detached (Ctrl-])"
            session.write(typed)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
            sys.stderr.write("\r\n")
