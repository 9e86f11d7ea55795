"""The MC146818 RTC and the PC's CMOS RAM against the datasheet and Linux's RTC code.

At 100 MHz: one second is 10^8 cycles, UIP's 244 us lead is 24,400 cycles, the 1984 us
update cycle is 198,400 cycles, and a 1024 Hz periodic period is 97,656.25 cycles.
Calendar facts (weekdays) are worked by hand in the comments.
"""

from __future__ import annotations

import calendar
from typing import List

import pytest

from reference.pc.bus import IoBus
from reference.pc.clock import VirtualClock
from reference.pc.devices.cmos import Cmos
from reference.pc.devices.pic import PicPair
from reference.pc.tests.ticking import StubCpu

SECOND = 100_000_000
SATURDAY_5_DEC_2026_134530 = calendar.timegm((2026, 12, 5, 13, 45, 30, 0, 0, 0))


class Board:
    def __init__(self, start: int = SATURDAY_5_DEC_2026_134530, **kwargs: int) -> None:
        self.cpu = StubCpu()
        self.clock = VirtualClock(self.cpu)  # type: ignore[arg-type]
        self.irq8: List[bool] = []
        self.cmos = Cmos(self.clock, irq8=self.irq8.append, start=start, **kwargs)
        self.bus = IoBus()
        self.bus.claim(Cmos.PORTS, self.cmos)

    def read(self, register: int) -> int:  # CMOS_READ
        self.bus.write(0x70, 1, register)
        return self.bus.read(0x71, 1)

    def write(self, register: int, value: int) -> None:  # CMOS_WRITE
        self.bus.write(0x70, 1, register)
        self.bus.write(0x71, 1, value)

    def at(self, cycle: int) -> None:
        self.cpu.tsc = cycle
        self.clock.run_due()

    def clock_registers(self) -> List[int]:
        return [self.read(r) for r in (0, 2, 4, 6, 7, 8, 9, 0x32)]


@pytest.fixture
def board() -> Board:
    return Board()


def test_power_on_time_in_bcd(board: Board) -> None:
    # 2026-12-05 is a Saturday (1 Jan 2026 was a Thursday; 5 Dec is day 339; 338 = 7*48 + 2).
    assert board.clock_registers() == [0x30, 0x45, 0x13, 7, 0x05, 0x12, 0x26, 0x20]
    assert board.read(0x0A) == 0x26  # 32.768 kHz, 1024 Hz; UIP clear at cycle 0
    assert board.read(0x0B) == 0x02  # 24-hour, BCD
    assert board.read(0x0D) == 0x80  # VRT


def test_time_advances_with_virtual_seconds(board: Board) -> None:
    board.at(SECOND - 1)
    assert board.read(0) == 0x30
    board.at(SECOND)
    assert board.read(0) == 0x31
    board.at(30 * SECOND)
    assert board.read(0) == 0x00
    assert board.read(2) == 0x46


def test_new_year_rollover() -> None:
    b = Board(start=calendar.timegm((2026, 12, 31, 23, 59, 59, 0, 0, 0)))
    b.at(SECOND)
    # 2027-01-01 is a Friday (2026 has 365 days: Thursday + 1); the RTC's Friday is 6.
    assert b.clock_registers() == [0x00, 0x00, 0x00, 6, 0x01, 0x01, 0x27, 0x20]


def test_binary_mode(board: Board) -> None:
    board.write(0x0B, 0x06)  # DM binary, 24-hour
    assert board.clock_registers() == [30, 45, 13, 7, 5, 12, 26, 20]


@pytest.mark.parametrize("hms, hour_register", [
    ((13, 45, 30), 0x81), ((0, 10, 0), 0x12), ((12, 0, 0), 0x92), ((11, 59, 0), 0x11),
], ids=["1pm", "12am", "12pm", "11am"])
def test_twelve_hour_mode(hms: tuple, hour_register: int) -> None:
    b = Board(start=calendar.timegm((2026, 12, 5) + hms + (0, 0, 0)))
    b.write(0x0B, 0x00)  # BCD, 12-hour: PM is hour bit 7
    assert b.read(4) == hour_register


def test_uip_window(board: Board) -> None:
    for cycle, uip in ((SECOND - 24_401, 0), (SECOND - 24_400, 0x80),
                       (SECOND + 198_399, 0x80), (SECOND + 198_400, 0)):
        board.at(cycle)
        assert board.read(0x0A) & 0x80 == uip, cycle


def test_linux_avoid_uip_reads_a_consistent_time(board: Board) -> None:
    """A replica of mc146818_avoid_UIP + mc146818_get_time, called inside UIP."""
    board.at(5 * SECOND - 1_000)
    for _ in range(10 * 1000):
        seconds = board.read(0)
        if board.read(0x0A) & 0x80:
            board.cpu.tsc += 100 * SECOND // 1_000_000  # udelay(100)
            continue
        if seconds != board.read(0):
            continue
        rest = [board.read(r) for r in (2, 4, 7, 8, 9)]
        if board.read(0x0A) & 0x80 or seconds != board.read(0):
            continue
        break
    # UIP rose 244 us before the 13:45:35 update and fell 1984 us after it.
    assert board.cpu.tsc >= 5 * SECOND + 198_400
    assert [seconds] + rest == [0x35, 0x45, 0x13, 0x05, 0x12, 0x26]


def test_set_bit_stops_updates_and_restarts_a_second_later(board: Board) -> None:
    board.write(0x0B, 0x12)  # UIE on
    board.write(0x0B, 0x82 | 0x10)  # SET (and UIE, which SET clears)
    assert board.read(0x0B) == 0x82
    for register, value in ((0, 0x58), (2, 0x59), (4, 0x23), (7, 0x28), (8, 0x02), (9, 0x27)):
        board.write(register, value)
    board.at(3 * SECOND)
    assert board.read(0x0A) & 0x80 == 0  # no update cycles while SET = 1
    assert [board.read(r) for r in (0, 2, 4, 7, 8, 9)] == [0x58, 0x59, 0x23, 0x28, 0x02, 0x27]
    board.write(0x0B, 0x02)  # SET = 0 at 3 s: first update at 4 s
    board.at(4 * SECOND - 1)
    assert board.read(0) == 0x58
    board.at(5 * SECOND)
    # 2027-02-28 23:59:58 + 2 s: 2027 is not a leap year, so 1 March.
    assert [board.read(r) for r in (0, 2, 4, 7, 8)] == [0x00, 0x00, 0x00, 0x01, 0x03]


def test_divider_reset_first_update_after_half_a_second(board: Board) -> None:
    # mach_set_cmos_time's pattern: freq select | RTC_DIV_RESET2, write, restore.
    board.at(SECOND // 4)
    saved = board.read(0x0A)
    board.write(0x0A, saved | 0x70)
    board.write(0, 0x10)
    board.at(2 * SECOND)
    assert board.read(0) == 0x10
    board.write(0x0A, saved)  # released at 2 s: first update at 2.5 s
    board.at(2 * SECOND + SECOND // 2 - 1)
    assert board.read(0) == 0x10
    board.at(2 * SECOND + SECOND // 2)
    assert board.read(0) == 0x11


def test_writing_seconds_keeps_the_update_phase(board: Board) -> None:
    board.at(SECOND * 3 // 10)
    board.write(0, 0x00)
    assert board.read(0) == 0x00
    board.at(SECOND)
    assert board.read(0) == 0x01


def test_periodic_interrupt_on_irq8(board: Board) -> None:
    board.write(0x0B, 0x42)  # PIE
    # 1024 Hz: flag k at k * 97,656.25 cycles, rounded up to a whole cycle.
    assert board.clock.next_event() == 97_657
    board.at(97_656)
    assert board.irq8 == []
    board.at(97_657)
    assert board.irq8 == [True]
    assert board.read(0x0C) == 0xC0  # IRQF | PF
    assert board.irq8 == [True, False]
    assert board.read(0x0C) == 0x00  # read clears
    assert board.clock.next_event() == 195_313


def test_update_ended_interrupt(board: Board) -> None:
    board.write(0x0B, 0x12)  # UIE
    assert board.clock.next_event() == SECOND + 198_400
    board.at(SECOND + 198_400)
    assert board.irq8 == [True]
    assert board.read(0x0C) == 0xD0  # IRQF | UF, and PF: it sets at 1024 Hz without PIE
    assert board.clock.next_event() == 2 * SECOND + 198_400


def test_flags_set_without_interrupts_enabled(board: Board) -> None:
    board.at(2 * SECOND)
    assert board.read(0x0C) == 0x50  # PF and UF, no IRQF
    assert board.irq8 == []
    assert board.clock.next_event() is None


def test_pc_cmos_ram_layout() -> None:
    b = Board(memory_bytes=32 << 20)
    assert [b.read(r) for r in (0x10, 0x12, 0x14)] == [0x00, 0x00, 0x02]
    assert [b.read(r) for r in (0x15, 0x16)] == [0x80, 0x02]  # 640 KiB
    # 32 MiB - 1 MiB = 31,744 KiB = 0x7C00; above 16 MiB: 16 MiB / 64 KiB = 256 = 0x0100.
    assert [b.read(r) for r in (0x17, 0x18, 0x30, 0x31)] == [0x00, 0x7C, 0x00, 0x7C]
    assert [b.read(r) for r in (0x34, 0x35)] == [0x00, 0x01]
    # Checksum of 0x10-0x2D: 0x02 + 0x80 + 0x02 + 0x7C = 0x100, high byte first.
    assert [b.read(r) for r in (0x2E, 0x2F)] == [0x01, 0x00]


def test_large_memory_is_capped() -> None:
    b = Board(memory_bytes=128 << 20)
    assert [b.read(r) for r in (0x17, 0x18)] == [0xFF, 0xFF]  # 130,048 KiB > 0xFFFF
    assert [b.read(r) for r in (0x34, 0x35)] == [0x00, 0x07]  # 112 MiB / 64 KiB = 0x700


def test_ram_and_read_only_registers(board: Board) -> None:
    board.write(0x40, 0xA5)
    board.write(0x7F, 0x5A)
    assert (board.read(0x40), board.read(0x7F)) == (0xA5, 0x5A)
    board.write(0x0D, 0x00)
    assert board.read(0x0D) == 0x80
    board.write(0x0A, 0xA6)  # UIP is read-only
    assert board.read(0x0A) == 0x26


def test_nmi_mask_bit(board: Board) -> None:
    board.bus.write(0x70, 1, 0x8F)
    assert board.cmos.nmi_masked
    assert board.bus.read(0x71, 1) == board.cmos.ram[0x0F]
    board.bus.write(0x70, 1, 0x0F)
    assert not board.cmos.nmi_masked


def test_irqf_shows_before_the_event_runs(board: Board) -> None:
    board.write(0x0B, 0x42)  # PIE
    board.cpu.tsc = 97_657  # the first periodic flag, run_due not called yet
    assert board.read(0x0C) == 0xC0
    assert board.irq8 == []  # no glitch on the line


def test_periodic_interrupt_reaches_the_slave_pic() -> None:
    cpu = StubCpu()
    clock = VirtualClock(cpu)  # type: ignore[arg-type]
    levels: List[bool] = []
    pic = PicPair(output=levels.append)
    cmos = Cmos(clock, irq8=lambda level: pic.set_irq(8, level), start=0)
    bus = IoBus()
    bus.claim(PicPair.PORTS, pic)
    bus.claim(Cmos.PORTS, cmos)
    for port, value in ((0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01),
                        (0xA0, 0x11), (0xA1, 0x28), (0xA1, 0x02), (0xA1, 0x01),
                        (0x21, 0xFB), (0xA1, 0xFE),  # cascade and IRQ8 unmasked
                        (0x70, 0x0B), (0x71, 0x42)):  # PIE
        bus.write(port, 1, value)
    cpu.tsc = 97_657
    clock.run_due()
    assert levels == [True]
    assert pic.acknowledge() == 0x28  # IRQ8: slave base 0x28 + 0
    bus.write(0x70, 1, 0x0C)
    assert bus.read(0x71, 1) == 0xC0  # the handler reads register C, IRQ8 falls
    for port in (0xA0, 0x20):
        bus.write(port, 1, 0x20)  # non-specific EOI, slave then master
    cpu.tsc = 195_313  # the second periodic flag: a new rising edge on IRQ8
    clock.run_due()
    assert levels == [True, False, True]
    assert pic.acknowledge() == 0x28
