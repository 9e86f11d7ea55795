"""A virtual clock driven by a stub CPU, for the device tests.

The devices only ever read ``cpu.tsc`` through ``VirtualClock``, so a tiny object with a
``tsc`` attribute is a whole CPU for them; a test moves time by advancing it and calling
``run_due`` (what ``Pc.run`` does between instruction runs).
"""

from __future__ import annotations

from reference.pc.clock import VirtualClock


class StubCpu:
    """Just the time stamp counter."""

    def __init__(self) -> None:
        self.tsc = 0


class Ticker:
    """A clock plus the stub CPU that drives it."""

    def __init__(self) -> None:
        self.cpu = StubCpu()
        self.clock = VirtualClock(self.cpu)

    def advance_to(self, when: int) -> None:
        """Let virtual time reach cycle ``when`` and fire what became due."""
        assert when >= self.cpu.tsc
        self.cpu.tsc = when
        self.clock.run_due()

    def advance(self, cycles: int) -> None:
        self.advance_to(self.cpu.tsc + cycles)
