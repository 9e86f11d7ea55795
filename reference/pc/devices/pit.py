"""Intel 8254 programmable interval timer, and the PC's system control port B (0x61).

Three counters at 0x40-0x42 and the control word register at 0x43 (datasheet: Intel
"8254 Programmable Interval Timer", 231164). On the PC the input clock is 1,193,182 Hz;
counter 0's OUT drives IRQ0, counter 1 paced DRAM refresh, counter 2 feeds the speaker and
its GATE is port 0x61 bit 0.

The counters do not tick. Each remembers the PIT tick at which its counting element (CE)
was loaded, and its count and OUT are worked out from ``clock.now()`` when read
(tick = cycles * 1193182 // clock.frequency). Counter 0 schedules one clock event, at
the next rising edge of its OUT, and signals it as ``irq0(True); irq0(False)``: the
PC's IRQ0 is edge triggered, so the edge is what the 8259A sees.

Modelled:
  - Control word: counter select, read/write (latch, LSB, MSB, LSB then MSB), modes 0-5,
    binary or BCD counting; separate read and write byte flip-flops (the datasheet allows
    reads and writes of one counter to interleave).
  - Counter latch command, read-back command (count and/or status, several counters),
    status byte (OUT, NULL COUNT, programmed mode).
  - Count loading on the CLK pulse after the write (so OUT in mode 0 rises N + 1 pulses
    after the write); mode 0's "writing the first byte disables counting"; modes 2 and 3
    take a new count at the end of the current period (the datasheet says the end of the
    current half-cycle for mode 3: not modelled); mode 4 reloads on every new count.
  - GATE (counter 2 only; 0 and 1 are wired high): suspends modes 0 and 4, stops and
    reloads modes 2 and 3 (OUT forced high), triggers modes 1 and 5.
  - Mode 3 counts by two, with the odd-count rule (high for (N+1)/2, low for (N-1)/2).
  - Port 0x61: bit 0 GATE2, bit 1 speaker data, bits 2-3 stored, bit 4 the refresh request
    toggle (every 18 PIT ticks, 15.09 us, what a BIOS programs counter 1 to), bit 5 OUT2.
Not modelled: the value of a counter between the control word and its first count (the
datasheet: undefined; here the last count, or the new count before it is loaded), the
speaker's sound, and counter 1 actually driving the refresh bit.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from reference.pc.bus import ByteWide
from reference.pc.clock import Timer, VirtualClock

PIT_HZ = 1_193_182
"""The PC's PIT input clock: 14.31818 MHz (the NTSC colour burst x 4) / 12."""

REFRESH_TICKS = 18
"""Port 0x61 bit 4 toggles on each refresh request: every 18 PIT ticks on a PC/AT."""

NEVER = 1 << 62


def _from_bcd(value: int) -> int:
    return sum(((value >> (4 * i)) & 0xF) * 10 ** i for i in range(4))


def _to_bcd(value: int) -> int:
    return sum((value // 10 ** i % 10) << (4 * i) for i in range(4))


class Counter:
    """One of the 8254's three counters."""

    def __init__(self, index: int, gate: bool) -> None:
        self.index = index
        self.gate = gate
        self.control = 0x30 | (index << 6)  # mode 0, LSB then MSB, binary: a known start
        self.count = 0x10000  # N as loaded (0 written means the modulus)
        self.loaded_at: Optional[int] = None  # tick of the CLK pulse that loaded CE
        self.held = 0  # CE while not counting
        self.idle_out = False  # OUT while not counting
        self.resume_e: Optional[int] = None  # modes 0/4 with GATE low: e to resume at
        self.pending: Optional[int] = None  # modes 2/3: next count, loaded at pending_at
        self.pending_at = NEVER
        self.null_until = NEVER  # NULL COUNT is 1 until this tick
        self.has_count = False  # a count was written since the control word
        self.trigger_count: Optional[int] = None  # modes 1/5: N for the next GATE trigger
        self.write_high = False
        self.read_high = False
        self.partial = 0  # the LSB written so far
        self.latch: List[int] = []  # output latch, bytes still to read
        self.status: Optional[int] = None  # latched status byte

    # --- programmed mode ----------------------------------------------------------------

    @property
    def mode(self) -> int:
        mode = (self.control >> 1) & 7
        return mode & 3 if mode >= 6 else mode  # 6 and 7 are modes 2 and 3

    @property
    def access(self) -> int:
        """RW1 RW0: 1 LSB only, 2 MSB only, 3 LSB then MSB."""
        return (self.control >> 4) & 3

    @property
    def modulus(self) -> int:
        return 10_000 if self.control & 1 else 0x10000

    # --- the counting element, worked out from the tick ------------------------------

    def settle(self, tick: int) -> None:
        """Take a count written during a mode 2/3 period once that period has ended."""
        if self.pending is not None and tick >= self.pending_at:
            self.count, self.loaded_at = self.pending, self.pending_at
            self.pending, self.pending_at = None, NEVER

    def state(self, tick: int) -> Tuple[int, bool]:
        """(CE, OUT) at ``tick``."""
        self.settle(tick)
        if self.loaded_at is None or tick < self.loaded_at:
            return (self.held, self.idle_out)
        e, n, mode = tick - self.loaded_at, self.count, self.mode
        if mode in (0, 1):  # OUT high at terminal count, CE wraps and keeps counting
            return ((n - e) % self.modulus, e >= n)
        if mode in (4, 5):  # OUT low for the one CLK at terminal count
            return ((n - e) % self.modulus, e != n)
        if mode == 2:  # N .. 1, OUT low while CE is 1
            return (n - e % n, e % n != n - 1)
        # Mode 3 counts by twos: an even N gives N/2 CLKs high, then N/2 low. An odd N
        # gives (N+1)/2 high (the first CLK takes 1 off) and (N-1)/2 low (the first takes 3).
        j = e % n
        high = (n + 1) // 2
        out = j < high
        k = j if out else j - high  # CLKs into this half
        if k == 0 or n % 2 == 0:
            return (n - 2 * k, out)
        return (n + 1 - 2 * k if out else n - 1 - 2 * k, out)

    def next_rise(self, tick: int) -> Optional[int]:
        """The first tick after ``tick`` at which OUT rises, or None."""
        self.settle(tick)
        if self.loaded_at is None:
            return None
        e, n, mode = tick - self.loaded_at, self.count, self.mode
        if mode in (0, 1):
            rise: Optional[int] = n if e < n else None
        elif mode in (4, 5):
            rise = n + 1 if e < n + 1 else None
        elif self.pending is not None:
            return self.pending_at
        else:
            rise = (e // n + 1) * n if e >= 0 else n  # the end of the current period
        return None if rise is None else self.loaded_at + rise

    def value(self, tick: int) -> int:
        ce = self.state(tick)[0] % self.modulus
        return _to_bcd(ce) if self.control & 1 else ce

    def out(self, tick: int) -> bool:
        return self.state(tick)[1]

    # --- stopping and starting ----------------------------------------------------------

    def _stop(self, tick: int, out: bool) -> None:
        self.held = self.state(tick)[0]
        self.idle_out = out
        self.loaded_at = None

    def _start(self, load_tick: int) -> None:
        self.loaded_at = load_tick
        self.null_until = load_tick

    def write_control(self, value: int, tick: int) -> None:
        """A control word for this counter (RW != 00): reset its logic."""
        self._stop(tick, out=((value >> 1) & 7) != 0)
        self.control = value & 0x3F | (self.index << 6)
        self.pending, self.pending_at = None, NEVER
        self.null_until = NEVER
        self.resume_e = None
        self.has_count, self.trigger_count = False, None
        self.write_high = self.read_high = False
        self.latch, self.status = [], None

    def write_count_byte(self, value: int, tick: int) -> None:
        access = self.access
        if access == 3 and not self.write_high:
            self.partial, self.write_high = value, True
            if self.mode == 0:  # "writing the first byte disables counting"
                self._stop(tick, out=False)
            return
        if access == 3:
            raw, self.write_high = self.partial | (value << 8), False
        else:
            raw = value << 8 if access == 2 else value
        n = _from_bcd(raw) if self.control & 1 else raw
        self._new_count(n or self.modulus, tick)

    def _new_count(self, n: int, tick: int) -> None:
        mode = self.mode
        self.has_count = True
        if mode in (1, 5):  # waits for a GATE trigger
            self.trigger_count = n
            self.null_until = NEVER
            return
        running = self.loaded_at is not None
        if mode in (2, 3) and running:
            if self.pending is None:
                self.pending_at = self.next_rise(tick) or tick + 1  # the end of this period
            self.pending = n
            self.null_until = self.pending_at
            return
        self.count = n
        self.held = n  # what CE reads before the load pulse
        if mode in (0, 4):
            self.idle_out = mode == 4
        if self.gate:
            self._start(tick + 1)
        else:
            self.loaded_at, self.resume_e = None, -1  # loads when GATE rises
            self.null_until = NEVER
            self.idle_out = mode != 0

    def set_gate(self, level: bool, tick: int) -> None:
        if level == self.gate:
            return
        self.gate = level
        mode = self.mode
        if mode in (0, 4):
            if not level and self.loaded_at is not None:
                self.resume_e = tick - self.loaded_at
                self._stop(tick, out=self.state(tick)[1])
            elif level and self.resume_e is not None:
                self._start(tick - self.resume_e)
                self.resume_e = None
        elif mode in (2, 3):
            if not level:  # OUT high, counting stops; the rising GATE reloads the newest N
                self._stop(tick, out=True)
                if self.pending is not None:
                    self.count, self.pending, self.pending_at = self.pending, None, NEVER
            elif self.has_count:
                self._start(tick + 1)
        elif level and self.trigger_count is not None:  # modes 1 and 5: trigger
            self.count = self.trigger_count
            self._start(tick + 1)

    # --- reading ------------------------------------------------------------------------

    def latch_count(self, tick: int) -> None:
        if self.latch:
            return  # a second latch before the first is read is ignored
        value = self.value(tick)
        access = self.access
        self.latch = [value & 0xFF] if access == 1 else [value >> 8] if access == 2 else [
            value & 0xFF, value >> 8]

    def latch_status(self, tick: int) -> None:
        if self.status is None:
            out = 0x80 if self.out(tick) else 0
            null = 0x40 if tick < self.null_until else 0
            self.status = out | null | (self.control & 0x3F)

    def read_byte(self, tick: int) -> int:
        if self.status is not None:
            status, self.status = self.status, None
            return status
        if self.latch:
            return self.latch.pop(0)
        value = self.value(tick)
        access = self.access
        if access == 1:
            return value & 0xFF
        if access == 2:
            return value >> 8
        high, self.read_high = self.read_high, not self.read_high
        return value >> 8 if high else value & 0xFF


class Pit(ByteWide):
    """The 8254 at 0x40-0x43 plus port 0x61 (GATE2, speaker, refresh toggle, OUT2)."""

    PORTS = (0x40, 0x41, 0x42, 0x43, 0x61)

    def __init__(self, clock: VirtualClock, irq0: Callable[[bool], None]) -> None:
        self.clock = clock
        self.irq0 = irq0
        self.counters = [Counter(0, gate=True), Counter(1, gate=True), Counter(2, gate=False)]
        self.port_b = 0  # bits 0-3 as last written
        self._timer: Optional[Timer] = None

    def tick(self) -> int:
        return self.clock.now() * PIT_HZ // self.clock.frequency

    def cycle_of(self, tick: int) -> int:
        """The first cycle at which the PIT has counted ``tick`` ticks."""
        return -(-tick * self.clock.frequency // PIT_HZ)

    # --- ports --------------------------------------------------------------------------

    def read_byte(self, port: int) -> int:
        tick = self.tick()
        if port == 0x61:
            refresh = 0x10 if (tick // REFRESH_TICKS) & 1 else 0
            out2 = 0x20 if self.counters[2].out(tick) else 0
            return self.port_b | refresh | out2
        if port == 0x43:
            return 0xFF  # the control word register is write-only
        return self.counters[port - 0x40].read_byte(tick)

    def write_byte(self, port: int, value: int) -> None:
        tick = self.tick()
        if port == 0x61:
            self.port_b = value & 0x0F
            self.counters[2].set_gate(bool(value & 1), tick)
            return
        if port == 0x43:
            self._control(value, tick)
        else:
            self.counters[port - 0x40].write_count_byte(value, tick)
        if port in (0x40, 0x43):
            self._schedule()

    def _control(self, value: int, tick: int) -> None:
        select = value >> 6
        if select == 3:  # read-back: bit 5 = /COUNT, bit 4 = /STATUS, bits 1-3 counters
            for counter in self.counters:
                if value & (2 << counter.index):
                    if not value & 0x20:
                        counter.latch_count(tick)
                    if not value & 0x10:
                        counter.latch_status(tick)
        elif value & 0x30 == 0:  # counter latch command
            self.counters[select].latch_count(tick)
        else:
            self.counters[select].write_control(value, tick)

    # --- IRQ0 ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        """(Re)arm the one clock event: counter 0's next rising OUT edge."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        rise = self.counters[0].next_rise(self.tick())
        if rise is not None:
            self._timer = self.clock.at(self.cycle_of(rise), self._edge)

    def _edge(self) -> None:
        self._timer = None
        self.irq0(True)
        self.irq0(False)
        self._schedule()
