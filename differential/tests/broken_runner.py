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


def make_checkers(known: object = None) -> List[Checker]:
    """The planted divergence; ``known`` (the campaign's pinned list) is not used."""
    return [Checker(UnicornRunner(), FlipsEaxBit31(), known=[])]


PLANTED_ENTRY = '''
[[difference]]
id = "planted-eax-bit-31"
suite = "vectors"
group = "*"
requires = ["eax"]
evidence = """a test plants it: FlipsEaxBit31 inverts EAX bit 31 on every case (a case may
also show one of Unicorn's real divergences: any other field is covered too)"""
'''
UNREADABLE_ENTRY = '''
[[difference]]
id = "from-a-newer-x86lab"
suite = "vectors"
group = "*"
evidence = "a key this code does not know, as an entry written for newer code has"
key_from_the_future = "x"
'''


def pinned_checkers(known: object) -> List[Checker]:
    """The planted divergence judged with the campaign's pinned list (a ``PinnedList``),
    as ``suite.checkers`` judges: a list holding ``PLANTED_ENTRY`` makes every case known."""
    return [Checker(UnicornRunner(), FlipsEaxBit31(), known=known.entries())]  # type: ignore[attr-defined]
