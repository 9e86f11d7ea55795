"""``make_checkers`` factories that make a campaign worker fail in a planted way (they run
inside the spawned worker, so they must be importable module-level functions)."""

from __future__ import annotations

import os
import signal
from typing import List

from differential.check import Checker


def raises() -> List[Checker]:
    raise RuntimeError("planted failure while building the checkers")


def killed() -> List[Checker]:
    os.kill(os.getpid(), signal.SIGKILL)
    return []


def sandboxed() -> List[Checker]:
    """The planted-divergence checker with Unicorn in its sandbox child (a grandchild of
    the campaign), to see the whole family die with the campaign."""
    from differential.sandbox import sandboxed_unicorn
    from differential.tests.broken_runner import FlipsEaxBit31

    return [Checker(sandboxed_unicorn(), FlipsEaxBit31(), known=[])]
