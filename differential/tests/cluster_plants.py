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


def divergent(known: object = None) -> List[Checker]:
    from differential.runners.unicorn_runner import UnicornRunner

    return [Checker(UnicornRunner(), FlipsEaxBit31(), known=[])]


def slow_divergent(known: object = None) -> List[Checker]:
    from differential.runners.unicorn_runner import UnicornRunner

    return [Checker(UnicornRunner(), SlowFlips(), known=[])]


def kills_its_process(known: object = None) -> List[Checker]:
    """Every batch kills the process running it: RQ must retry, then give up."""
    os.kill(os.getpid(), signal.SIGKILL)
    return []


def pinned_divergent(known: object = None) -> List[Checker]:
    """The planted divergence judged with the campaign's pinned known list."""
    from differential.tests.broken_runner import pinned_checkers

    return pinned_checkers(known)


def child_cannot_read_the_pin(known: object = None) -> List[Checker]:
    """A ``ChildJudge`` whose sandbox child is handed a pinned list with a key its code
    does not know: what a child running another checkout than its worker's would meet (a
    fresh interpreter started after the checkout was edited). Its batch must be said
    once, not retried by this worker."""
    from differential.judging import ChildJudge
    from differential.tests.broken_runner import UNREADABLE_ENTRY

    checker = ChildJudge(known=known)  # type: ignore[arg-type]
    module, cls, kwargs = checker.judges.spec
    checker.judges.spec = (module, cls, {**kwargs, "known_text": UNREADABLE_ENTRY})
    return [checker]


def cannot_import(known: object = None) -> List[Checker]:
    """What a work horse meets when the checkout was edited under its worker (a module
    that no longer imports): the job cannot judge at all."""
    raise ImportError("cannot import name 'Planted' from 'differential.known' (planted)")
