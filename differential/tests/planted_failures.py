"""``make_checkers`` factories that make a campaign worker fail in a planted way (they run
inside the spawned worker, so they must be importable module-level functions)."""

from __future__ import annotations

import os
import signal
from typing import List

from differential.check import Checker


def raises(known: object = None) -> List[Checker]:
    raise RuntimeError("planted failure while building the checkers")


def killed(known: object = None) -> List[Checker]:
    os.kill(os.getpid(), signal.SIGKILL)
    return []


def sandboxed(known: object = None) -> List[Checker]:
    """The planted-divergence checker with Unicorn in its sandbox child (a grandchild of
    the campaign), to see the whole family die with the campaign."""
    from differential.sandbox import sandboxed_unicorn
    from differential.tests.broken_runner import FlipsEaxBit31

    return [Checker(sandboxed_unicorn(), FlipsEaxBit31(), known=[])]


class AbortsOnSecondRun:
    """A runner whose process aborts on the second case it is given: a crash that needs
    an earlier case, to tell "crashes alone" from "crashes after others"."""

    name = "aborts-on-second-run"

    def __init__(self) -> None:
        self.runs = 0

    def run(self, case):
        from ground.case import Outcome

        self.runs += 1
        if self.runs == 2:
            os.abort()
        return Outcome(regs=dict(case.regs), memory=dict(case.memory))


class Hangs:
    """A runner that never answers (an engine stuck in native code)."""

    name = "hangs"

    def run(self, case):
        signal.pause()


class RaisesOnBoom:
    """A runner with a Python bug on cases named "boom...": raised, not a crash. Other
    cases come back with their own name in the notes, to spot an answer meant for
    another case."""

    name = "raises-on-boom"

    def run(self, case):
        from ground.case import Outcome

        if case.name.startswith("boom"):
            raise KeyError("eax")
        return Outcome(regs=dict(case.regs), memory=dict(case.memory),
                       notes={"ran": case.name})


class Slow:
    """A runner that takes 0.3 s a case (an engine walking many pages), with each case's
    name in the notes."""

    name = "slow"

    def run(self, case):
        import time

        from ground.case import Outcome

        time.sleep(0.3)
        return Outcome(regs=dict(case.regs), memory=dict(case.memory),
                       notes={"ran": case.name})
