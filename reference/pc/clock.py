"""A deterministic virtual clock: time is retired instructions, never the host's time.

One retired instruction is one cycle of a CPU running at ``FREQUENCY`` Hz, and the TSC
is that cycle count (``cpu.tsc``). The PIT, the RTC and every timer read time from here,
so two boots of the same image retire the same instructions and print the same bytes.
When the CPU halts (HLT with interrupts enabled) the machine skips the clock straight to
the next timer event, as if the idle cycles had passed: the TSC advances by them too,
which is what a real TSC does while the CPU is halted.

Devices do not tick: they compute their state from ``now()`` when read and schedule an
event only for the moment something observable happens (an IRQ edge). ``Pc.run`` lets
the CPU run up to the next event, then calls ``run_due``.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

FREQUENCY = 100_000_000
"""Virtual cycles (= instructions) per second: 100 MHz. Lower wastes fewer instructions
in the kernel's busy-wait delays; higher makes timer interrupts rarer per instruction.
Linux calibrates its TSC and delay loop against the PIT, so any value is consistent."""


class Timer:
    """A handle for a scheduled callback; ``cancel()`` makes it not fire."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: int, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """Cycles since power-on (``now()``), and callbacks at given cycles."""

    def __init__(self, cpu: Cpu, frequency: int = FREQUENCY) -> None:
        self.cpu = cpu
        self.frequency = frequency
        self._queue: List[Tuple[int, int, Timer]] = []
        self._sequence = 0  # ties fire in scheduling order: deterministic
        self.skipped = 0
        """Cycles skipped while halted (part of ``now()``; reported as idle time)."""

    def now(self) -> int:
        """Cycles since power-on: the CPU's retired instructions plus halted time."""
        return self.cpu.tsc

    def seconds(self) -> float:
        return self.cpu.tsc / self.frequency

    def cycles(self, seconds: float) -> int:
        """How many cycles ``seconds`` of virtual time is (at least 1)."""
        return max(1, int(seconds * self.frequency))

    def at(self, when: int, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` once ``now() >= when``."""
        timer = Timer(when, callback)
        heapq.heappush(self._queue, (when, self._sequence, timer))
        self._sequence += 1
        return timer

    def after(self, delay: int, callback: Callable[[], None]) -> Timer:
        return self.at(self.now() + max(1, delay), callback)

    def next_event(self) -> Optional[int]:
        """The cycle of the earliest pending callback, or None."""
        queue = self._queue
        while queue and queue[0][2].cancelled:
            heapq.heappop(queue)
        return queue[0][0] if queue else None

    def run_due(self) -> None:
        """Fire every callback whose time has come, earliest first."""
        queue = self._queue
        while queue and queue[0][0] <= self.cpu.tsc:
            _, _, timer = heapq.heappop(queue)
            if not timer.cancelled:
                timer.callback()

    def skip_to(self, when: int) -> None:
        """Let idle time pass (the CPU is halted) until cycle ``when``."""
        if when > self.cpu.tsc:
            self.skipped += when - self.cpu.tsc
            self.cpu.tsc = when
