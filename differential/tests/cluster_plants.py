"""Checker factories for cluster tests (named in a ``ClusterPlan`` as "module:function",
so every work horse on every machine builds the same ones)."""

from __future__ import annotations

import os
import signal
import time
from typing import List

from differential.check import Checker
from differential.tests.broken_runner import FlipsEaxBit31

SLOW_CASE = 0.02  # seconds per case: a batch of 50 takes a second, long enough to kill


class SlowFlips(FlipsEaxBit31):
    """The planted divergence (EAX bit 31 flipped), slowed down."""

    def run(self, case):
        time.sleep(SLOW_CASE)
        return super().run(case)


def divergent() -> List[Checker]:
    from differential.runners.unicorn_runner import UnicornRunner

    return [Checker(UnicornRunner(), FlipsEaxBit31(), known=[])]


def slow_divergent() -> List[Checker]:
    from differential.runners.unicorn_runner import UnicornRunner

    return [Checker(UnicornRunner(), SlowFlips(), known=[])]


def kills_its_process() -> List[Checker]:
    """Every batch kills the process running it: RQ must retry, then give up."""
    os.kill(os.getpid(), signal.SIGKILL)
    return []
