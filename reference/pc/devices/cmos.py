"""Motorola MC146818 real-time clock and CMOS RAM, at ports 0x70 (index) and 0x71 (data).

Port 0x70 selects one of 128 bytes with bits 0-6; on the PC its bit 7 also gates the
CPU's NMI input (``nmi_masked``). Registers, from the MC146818A datasheet:

  0x00 seconds  0x01 seconds alarm  0x02 minutes  0x03 minutes alarm  0x04 hours
  0x05 hours alarm  0x06 day of week (1 = Sunday)  0x07 day of month  0x08 month
  0x09 year (two digits)  0x0A register A  0x0B register B  0x0C register C
  0x0D register D  0x0E-0x7F battery-backed RAM (the PC's CMOS layout; 0x32 century)

Time never comes from the host: the clock reads ``start`` (seconds since 1970, the
RTC's own time, as UTC) plus the virtual seconds elapsed on ``clock``. Nothing ticks:
every register is worked out from ``clock.now()`` when read.

Modelled:
  - Time and date in BCD or binary (register B DM) and 24 or 12 hour (register B 24/12,
    PM in hour bit 7), updated once a second. Writes to them set the clock (the chip's
    undefined results for out-of-range values are clamped to a valid date here).
  - Register B SET: updates stop (and UIE is cleared) while it is 1; the first update
    comes one second after it is cleared. Register A divider reset (DV2-DV0 = 11x) stops
    the clock too; the first update comes 500 ms after the divider is released.
  - UIP (register A bit 7): 1 from 244 us before each update until the update cycle ends
    (1984 us after it starts), at fixed points of the virtual clock, so Linux's
    mc146818_avoid_UIP always sees the same thing.
  - Register C flags PF (periodic, rate from RS3-RS0), UF (update ended) and IRQF; read
    clears them. IRQ8 goes up when an enabled flag (PIE, UIE) is set and down when
    register C is read; one clock event is scheduled only while an enabled flag can rise.
  - Register D: VRT (the battery is good) always 1.
  - RAM at 0x0E-0x7F with PC values: no floppy (0x10), no fixed disk (0x12), equipment
    byte with a coprocessor (0x14), base / extended memory sizes (0x15-0x18, 0x30-0x31),
    memory above 16 MiB in 64 KiB units (0x34-0x35), and the 0x10-0x2D checksum at
    0x2E-0x2F (high byte first).
Not modelled: the alarm match (AF, AIE: the alarm bytes are stored only), daylight
saving (DSE), the square-wave output (SQWE), time bases other than 32.768 kHz, and an
independent day-of-week counter (register 6 is derived from the date; writes to it are
ignored).
"""

from __future__ import annotations

import calendar
import time
from typing import Callable, List, Optional

from reference.pc.bus import ByteWide
from reference.pc.clock import Timer, VirtualClock

SECONDS, MINUTES, HOURS, WEEKDAY, DAY, MONTH, YEAR = 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09
REG_A, REG_B, REG_C, REG_D = 0x0A, 0x0B, 0x0C, 0x0D
CENTURY = 0x32
ALARMS = (0x01, 0x03, 0x05)

A_UIP, B_SET, B_PIE, B_AIE, B_UIE, B_DM, B_24H = 0x80, 0x80, 0x40, 0x20, 0x10, 0x04, 0x02
C_IRQF, C_PF, C_AF, C_UF = 0x80, 0x40, 0x20, 0x10
D_VRT = 0x80

UIP_LEAD_US = 244
"""UIP rises this long before an update (datasheet: t_BUC)."""
UPDATE_US = 1984
"""The update cycle's length with a 32.768 kHz time base."""


def _bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


def _unbcd(value: int) -> int:
    return (value >> 4) * 10 + (value & 0xF)


class Cmos(ByteWide):
    """The MC146818 RTC with the PC's CMOS RAM behind ports 0x70/0x71."""

    PORTS = (0x70, 0x71)

    def __init__(self, clock: VirtualClock, irq8: Callable[[bool], None], start: int = 0,
                 memory_bytes: Optional[int] = None) -> None:
        self.clock = clock
        self.irq8 = irq8
        self.index = 0
        self.nmi_masked = False
        self.ram: List[int] = [0] * 128
        self.ram[REG_A] = 0x26  # 32.768 kHz time base, 1024 Hz periodic rate
        self.ram[REG_B] = B_24H  # 24-hour, BCD, no interrupts
        self._seconds = start  # the RTC time at _base (while running), or held (stopped)
        self._base = 0  # the cycle of a second boundary (the next update is at +1 s)
        self._divider_origin = 0  # the cycle the divider chain last started
        self._flags = 0  # register C flags not yet read
        self._flags_at = 0  # the cycle up to which flags are collected
        self._irq = False
        self._timer: Optional[Timer] = None
        self._frequency = clock.frequency
        self._uip_lead = clock.frequency * UIP_LEAD_US // 1_000_000
        self._update_length = clock.frequency * UPDATE_US // 1_000_000
        self._fill_pc_ram(memory_bytes)

    # --- the PC's CMOS RAM --------------------------------------------------------------

    def _fill_pc_ram(self, memory_bytes: Optional[int]) -> None:
        ram = self.ram
        ram[0x10] = 0x00  # floppy drive types: none
        ram[0x12] = 0x00  # fixed disk types: none
        ram[0x14] = 0x02  # equipment: no floppy, EGA/VGA display, math coprocessor present
        if memory_bytes is not None:
            kib = memory_bytes // 1024
            base = min(640, kib)
            extended = min(0xFFFF, max(0, kib - 1024))
            above_16m = min(0xFFFF, max(0, (memory_bytes - (16 << 20)) // 65536))
            for low, value in ((0x15, base), (0x17, extended), (0x30, extended),
                               (0x34, above_16m)):
                ram[low], ram[low + 1] = value & 0xFF, value >> 8
        checksum = sum(ram[0x10:0x2E]) & 0xFFFF
        ram[0x2E], ram[0x2F] = checksum >> 8, checksum & 0xFF

    # --- time ---------------------------------------------------------------------------

    def running(self) -> bool:
        """Updates happen: SET is 0 and the divider chain is not held in reset."""
        return not self.ram[REG_B] & B_SET and not self._divider_reset()

    def _divider_reset(self) -> bool:
        return (self.ram[REG_A] >> 5) & 3 == 3  # DV2 DV1 = 11

    def now_seconds(self) -> int:
        """The RTC's time (seconds since 1970) as its registers show it now."""
        if not self.running():
            return self._seconds
        return self._seconds + (self.clock.now() - self._base) // self._frequency

    def _release(self, first_update_after: int) -> None:
        """Start the clock again; its first update comes ``first_update_after`` cycles on."""
        self._base = self.clock.now() + first_update_after - self._frequency

    def uip(self) -> bool:
        if not self.running():
            return False
        # The k-th update (k >= 1) starts at base + k seconds; UIP covers it from `lead`
        # before until `update` after.
        since = self.clock.now() - self._base + self._uip_lead
        return (since >= self._frequency
                and since % self._frequency < self._uip_lead + self._update_length)

    def _encode(self, value: int) -> int:
        return value if self.ram[REG_B] & B_DM else _bcd(value)

    def _decode(self, value: int) -> int:
        return value if self.ram[REG_B] & B_DM else _unbcd(value)

    def _read_time(self, register: int) -> int:
        t = time.gmtime(self.now_seconds())
        if register == HOURS and not self.ram[REG_B] & B_24H:
            pm = 0x80 if t.tm_hour >= 12 else 0
            return self._encode(t.tm_hour % 12 or 12) | pm
        values = {SECONDS: t.tm_sec, MINUTES: t.tm_min, HOURS: t.tm_hour,
                  WEEKDAY: (t.tm_wday + 1) % 7 + 1, DAY: t.tm_mday, MONTH: t.tm_mon,
                  YEAR: t.tm_year % 100, CENTURY: t.tm_year // 100}
        return self._encode(values[register])

    def _write_time(self, register: int, value: int) -> None:
        if register == WEEKDAY:
            return
        if register == HOURS and not self.ram[REG_B] & B_24H:
            number = self._decode(value & 0x7F) % 12 + (12 if value & 0x80 else 0)
        else:
            number = self._decode(value)
        t = time.gmtime(self.now_seconds())
        fields = [t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec]
        if register == YEAR:
            fields[0] = t.tm_year // 100 * 100 + min(number, 99)
        elif register == CENTURY:
            fields[0] = min(number, 99) * 100 + t.tm_year % 100
        else:
            slot = {MONTH: 1, DAY: 2, HOURS: 3, MINUTES: 4, SECONDS: 5}[register]
            limit = {MONTH: (1, 12), DAY: (1, 31), HOURS: (0, 23), MINUTES: (0, 59),
                     SECONDS: (0, 59)}[register]
            fields[slot] = max(limit[0], min(limit[1], number))
        fields[0] = max(1970, fields[0])
        fields[2] = min(fields[2], calendar.monthrange(fields[0], fields[1])[1])
        new = calendar.timegm((fields[0], fields[1], fields[2], fields[3], fields[4],
                               fields[5], 0, 0, 0))
        self._seconds += new - self.now_seconds()  # the divider phase is kept

    # --- register C and IRQ8 ------------------------------------------------------------

    def _periodic_divisor(self) -> int:
        """32.768 kHz / this = the periodic rate; 0 when RS3-RS0 = 0 (off)."""
        rs = self.ram[REG_A] & 0x0F
        if rs == 0:
            return 0
        return 1 << ((rs + 6 if rs < 3 else rs) - 1)  # RS 1, 2 give the rates of 8, 9

    def _periodic_edges(self, cycle: int) -> int:
        """Periodic flag settings from the divider's start up to ``cycle``."""
        divisor = self._periodic_divisor()
        if not divisor or self._divider_reset() or cycle < self._divider_origin:
            return 0
        return (cycle - self._divider_origin) * 32768 // (self._frequency * divisor)

    def _updates(self, cycle: int) -> int:
        """Update cycles ended from the clock's last start up to ``cycle`` (the k-th
        ends at base + k seconds + the update cycle's length, k >= 1)."""
        if not self.running():
            return 0
        return max(0, (cycle - self._base - self._update_length) // self._frequency)

    def _collect_flags(self) -> None:
        """Set PF and UF for the periodic edges and updates since the last look."""
        now, then = self.clock.now(), self._flags_at
        if self._periodic_edges(now) > self._periodic_edges(then):
            self._flags |= C_PF
        if self._updates(now) > self._updates(then):
            self._flags |= C_UF
        self._flags_at = now

    def _update_irq(self) -> None:
        """IRQF and IRQ8 rise when an enabled flag is set (PIE/UIE sit above PF/UF)."""
        if self._flags & self.ram[REG_B] & (C_PF | C_UF):
            self._flags |= C_IRQF
            if not self._irq:
                self._irq = True
                self.irq8(True)

    def _schedule(self) -> None:
        """One event: the next moment an enabled flag rises while IRQ8 is still low."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._irq:
            return  # nothing observable until register C is read
        now, frequency, moments = self.clock.now(), self._frequency, []
        divisor = self._periodic_divisor()
        if self.ram[REG_B] & B_PIE and divisor and not self._divider_reset():
            k = self._periodic_edges(now) + 1
            moments.append(self._divider_origin - (-k * frequency * divisor // 32768))
        if self.ram[REG_B] & B_UIE and self.running():
            k = self._updates(now) + 1
            moments.append(self._base + k * frequency + self._update_length)
        if moments:
            self._timer = self.clock.at(min(moments), self._event)

    def _event(self) -> None:
        self._timer = None
        self._collect_flags()
        self._update_irq()
        self._schedule()

    def _read_c(self) -> int:
        self._collect_flags()
        if self._flags & self.ram[REG_B] & (C_PF | C_UF):
            self._flags |= C_IRQF  # a flag whose event has not run yet still shows IRQF
        flags, self._flags = self._flags, 0
        if self._irq:
            self._irq = False
            self.irq8(False)
        self._schedule()
        return flags

    # --- ports --------------------------------------------------------------------------

    def read_byte(self, port: int) -> int:
        if port == 0x70:
            return 0xFF  # the index register is write-only
        register = self.index
        if register in (SECONDS, MINUTES, HOURS, WEEKDAY, DAY, MONTH, YEAR, CENTURY):
            return self._read_time(register)
        if register == REG_A:
            return self.ram[REG_A] | (A_UIP if self.uip() else 0)
        if register == REG_C:
            return self._read_c()
        if register == REG_D:
            return D_VRT
        return self.ram[register]

    def write_byte(self, port: int, value: int) -> None:
        if port == 0x70:
            self.index, self.nmi_masked = value & 0x7F, bool(value & 0x80)
            return
        register = self.index
        if register in (SECONDS, MINUTES, HOURS, WEEKDAY, DAY, MONTH, YEAR, CENTURY):
            self._write_time(register, value)
        elif register == REG_A:
            self._write_a(value)
        elif register == REG_B:
            self._write_b(value)
        elif register not in (REG_C, REG_D):  # C and D are read-only
            self.ram[register] = value

    def _write_a(self, value: int) -> None:
        was_reset = self._divider_reset()
        self._set_control(REG_A, value & 0x7F, first_update_after=self._frequency // 2)
        if was_reset and not self._divider_reset():
            self._divider_origin = self.clock.now()  # the periodic rate restarts too
            self._schedule()

    def _write_b(self, value: int) -> None:
        if value & B_SET:
            value &= ~B_UIE  # datasheet: SET = 1 clears UIE
        self._set_control(REG_B, value, first_update_after=self._frequency)

    def _set_control(self, register: int, value: int, first_update_after: int) -> None:
        """Write register A or B; stop or restart the clock if that changed."""
        self._collect_flags()
        shown, was_running = self.now_seconds(), self.running()
        self.ram[register] = value
        if was_running != self.running():
            self._seconds = shown  # held (stopping), or the time to start from
            if not was_running:
                self._release(first_update_after)
        self._update_irq()
        self._schedule()
