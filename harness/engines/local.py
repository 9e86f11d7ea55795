"""A stand-in engine: the host's own ``/bin/sh`` on a pty, announcing fake boot marks.

It lets the console driver's tests (markers, ^C recovery, binary-safe files) run in a
second without a kernel, and lets someone try the harness before any image is built. The
image is ignored; nothing here claims to be a guest.
"""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path
from typing import Optional, Sequence

from harness.engines.base import BootImage, ProcessSession, Session
from images.contract import BOOT_MARKER, PROMPT


class LocalShellEngine:
    name = "local"

    def __init__(self, shell: str = "/bin/sh") -> None:
        self.shell = shell

    def start(
        self, image: Optional[BootImage] = None, memory_mib: int = 256,
        extra: Sequence[str] = (), log_path: Optional[Path] = None,
    ) -> Session:
        script = (
            "echo 'Linux version (local stand-in)'; "
            f"echo {shlex.quote(BOOT_MARKER)}; exec {shlex.quote(self.shell)} -i +m"
        )
        env = dict(os.environ, PS1=PROMPT, PS2="> ", TERM="dumb", ENV="")
        # SIGHUP, as when a terminal closes: an interactive shell ignores SIGTERM.
        return ProcessSession(self.name, ["/bin/sh", "-c", script, *extra], log_path,
                              use_pty=True, env=env, stop_signal=signal.SIGHUP)
