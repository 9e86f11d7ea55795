"""Child processes die with their parent: a campaign worker or an engine sandbox that
outlives a ``kill -9`` of its parent would go on writing into a folder nobody owns.

On Linux the kernel does it (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); elsewhere a daemon
thread polls the parent's pid and exits the process when it changes. Linux sends the
signal when the *thread* that started the child ends, so start children from a thread
that outlives them (the CLI and the campaign use the main thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _prctl_deathsig() -> bool:
    """Ask Linux to SIGKILL this process when its parent thread exits; False if unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, period: float) -> None:
    while os.getppid() == parent:
        time.sleep(period)
    os._exit(1)


def die_with_parent(parent: int, period: float = 1.0) -> None:
    """Make this process end when ``parent`` (the pid that started it) goes away. If the
    parent is already gone (it died before this ran), exit at once."""
    armed = _prctl_deathsig()
    if os.getppid() != parent:  # died between our start and the prctl: no signal will come
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent, period), daemon=True).start()
