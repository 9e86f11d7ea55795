"""A deliberately broken runner, to plant divergences in campaign tests."""

from __future__ import annotations

from typing import List

from differential.check import Checker
from differential.runners.reference_runner import ReferenceRunner
from differential.runners.unicorn_runner import UnicornRunner
from ground.case import Case, Outcome


class FlipsEaxBit31:
    """The reference, except that EAX bit 31 comes out inverted on every case."""

    name = "broken-reference"

    def __init__(self) -> None:
        self.inner = ReferenceRunner()

    def run(self, case: Case) -> Outcome:
        out = self.inner.run(case)
        if "eax" not in out.regs:
            return out
        regs = dict(out.regs)
        regs["eax"] ^= 0x80000000
        return Outcome(regs=regs, memory=out.memory, exception=out.exception, notes=out.notes)


def make_checkers() -> List[Checker]:
    return [Checker(UnicornRunner(), FlipsEaxBit31(), known=[])]
