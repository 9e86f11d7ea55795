"""The 8254 and port 0x61 against the datasheet (Intel 231164) and Linux's PIT code.

Times are worked by hand: at 100 MHz one PIT tick (1,193,182 Hz) is 83.8 cycles, and a
count written during tick t is loaded at tick t + 1 and decremented from tick t + 2 on.
"""

from __future__ import annotations

from typing import List, Tuple

import pytest

from reference.pc.bus import IoBus
from reference.pc.clock import VirtualClock
from reference.pc.devices.pic import PicPair
from reference.pc.devices.pit import Pit
from reference.pc.tests.ticking import StubCpu

CYCLES_PER_SECOND = 100_000_000
PIT_HZ = 1_193_182


def first_cycle_of_tick(tick: int) -> int:
    """The first cycle c with c * PIT_HZ // 100 MHz >= tick (ceiling division)."""
    return (tick * CYCLES_PER_SECOND + PIT_HZ - 1) // PIT_HZ


class Board:
    def __init__(self) -> None:
        self.cpu = StubCpu()
        self.clock = VirtualClock(self.cpu)  # type: ignore[arg-type]
        self.edges: List[bool] = []
        self.pit = Pit(self.clock, irq0=self.edges.append)
        self.bus = IoBus()
        self.bus.claim(Pit.PORTS, self.pit)

    def out(self, port: int, value: int) -> None:
        self.bus.write(port, 1, value)

    def inb(self, port: int) -> int:
        return self.bus.read(port, 1)

    def at_tick(self, tick: int) -> None:
        """Move time to the first cycle of ``tick`` and fire what is due."""
        self.cpu.tsc = first_cycle_of_tick(tick)
        self.clock.run_due()

    def read16(self, port: int) -> int:
        low = self.inb(port)
        return low | self.inb(port) << 8


@pytest.fixture
def board() -> Board:
    return Board()


def test_tick_arithmetic(board: Board) -> None:
    assert first_cycle_of_tick(1) == 84  # 10^8 / 1193182 = 83.81
    board.cpu.tsc = CYCLES_PER_SECOND
    assert board.pit.tick() == PIT_HZ
    assert board.pit.cycle_of(1) == 84


def test_pit_calibrate_tsc_mode0_out2(board: Board) -> None:
    # pit_calibrate_tsc: GATE2 high, speaker off, counter 2 mode 0 binary, 50 ms.
    board.out(0x61, (board.inb(0x61) & ~0x02) | 0x01)
    board.out(0x43, 0xB0)
    latch = PIT_HZ // 20  # CAL_LATCH for CAL_MS = 50: 59659
    board.out(0x42, latch & 0xFF)
    board.out(0x42, latch >> 8)
    # Loaded at tick 1, terminal count after 59659 more ticks: OUT2 high from tick 59660.
    board.cpu.tsc = first_cycle_of_tick(59660) - 1
    assert board.inb(0x61) & 0x20 == 0
    board.cpu.tsc += 1
    assert board.inb(0x61) & 0x20 == 0x20
    assert board.inb(0x61) & 0x03 == 0x01  # GATE2 on, speaker data off, as written


def test_quick_pit_calibrate_reads_msb_consistent_with_cycles(board: Board) -> None:
    """A replica of quick_pit_calibrate's loop: each inb costs 50 cycles here."""

    def inb(port: int) -> int:
        board.cpu.tsc += 50
        return board.inb(port)

    def verify_msb(val: int) -> bool:
        inb(0x42)  # LSB, ignored
        return inb(0x42) == val

    def expect_msb(val: int) -> Tuple[bool, int, int]:
        count, tsc, prev_tsc = 0, 0, 0
        while count < 50000 and verify_msb(val):
            prev_tsc, tsc = tsc, board.cpu.tsc
            count += 1
        return count > 5, tsc, board.cpu.tsc - prev_tsc

    board.out(0x61, (board.inb(0x61) & ~0x02) | 0x01)
    board.out(0x43, 0xB0)
    board.out(0x42, 0xFF)
    board.out(0x42, 0xFF)
    verify_msb(0)
    ok, tsc, d1 = expect_msb(0xFF)
    assert ok
    max_iterations = 50 * PIT_HZ // 1000 // 256  # MAX_QUICK_PIT_ITERATIONS = 233
    for i in range(1, max_iterations + 1):
        ok, delta, d2 = expect_msb(0xFF - i)
        assert ok
        delta -= tsc
        if d1 + d2 >= delta >> 11:
            continue
        assert verify_msb(0xFE - i)
        break
    else:
        pytest.fail("the 500 ppm bound was never reached")
    # delta cycles for i * 256 PIT ticks: the kernel's TSC frequency estimate.
    khz = delta * PIT_HZ // (i * 256 * 1000)
    assert abs(khz - 100_000) <= 100_000 // 2000  # within 500 ppm of 100 MHz


def test_linux_periodic_tick_raises_irq0_each_period() -> None:
    # pit_set_periodic with HZ = 100: PIT_LATCH = (1193182 + 50) // 100 = 11932 = 0x2E9C.
    b = Board()
    b.out(0x43, 0x34)
    b.out(0x40, 0x9C)
    b.out(0x40, 0x2E)
    assert b.clock.next_event() == first_cycle_of_tick(1 + 11932)
    b.at_tick(11932)
    assert b.edges == []
    b.at_tick(11933)
    assert b.edges == [True, False]
    b.at_tick(1 + 2 * 11932)
    assert b.edges == [True, False] * 2
    assert b.clock.next_event() == first_cycle_of_tick(1 + 3 * 11932)


def test_counter_latch_holds_the_count(board: Board) -> None:
    board.out(0x43, 0x34)
    board.out(0x40, 0x9C)
    board.out(0x40, 0x2E)
    board.at_tick(1001)
    board.out(0x43, 0x00)  # i8253 clocksource: latch counter 0
    board.at_tick(5000)
    assert board.read16(0x40) == 11932 - 1000  # 10932 = 0x2AB4, as of the latch
    assert board.read16(0x40) == 11932 - 4999  # unlatched again


def test_mode2_counts_n_to_1_with_out_low_at_1(board: Board) -> None:
    board.out(0x43, 0x34)
    board.out(0x40, 5)
    board.out(0x40, 0)
    seen = []
    for tick in range(1, 12):
        board.at_tick(tick)
        board.out(0x43, 0xC2)  # read-back: count and status of counter 0
        status = board.inb(0x40)
        seen.append((board.read16(0x40), status >> 7))
    assert seen == [(5, 1), (4, 1), (3, 1), (2, 1), (1, 0)] * 2 + [(5, 1)]


@pytest.mark.parametrize("n, expected", [
    (6, [(6, 1), (4, 1), (2, 1), (6, 0), (4, 0), (2, 0), (6, 1)]),
    (5, [(5, 1), (4, 1), (2, 1), (5, 0), (2, 0), (5, 1)]),
], ids=["even", "odd"])
def test_mode3_square_wave(board: Board, n: int, expected: list) -> None:
    # Even N: by twos, N/2 high and N/2 low. Odd N: high (N+1)/2 (first CLK -1, then -2),
    # low (N-1)/2 (first CLK -3, then -2).
    board.out(0x43, 0x36)
    board.out(0x40, n)
    board.out(0x40, 0)
    seen = []
    for tick in range(1, 1 + len(expected)):
        board.at_tick(tick)
        board.out(0x43, 0xC2)
        status = board.inb(0x40)
        seen.append((board.read16(0x40), status >> 7))
    assert seen == expected


def test_mode4_oneshot_like_linux_next_event(board: Board) -> None:
    board.out(0x43, 0x38)  # pit_set_oneshot
    board.out(0x40, 3)  # pit_next_event(3)
    board.out(0x40, 0)
    # Loaded at tick 1, CE = 0 at tick 4 with OUT low for that CLK, OUT back high at 5.
    assert board.clock.next_event() == first_cycle_of_tick(5)
    board.at_tick(4)
    assert board.edges == []
    board.out(0x43, 0xE2)  # read-back: status only
    assert board.inb(0x40) & 0x80 == 0
    board.at_tick(5)
    assert board.edges == [True, False]
    assert board.clock.next_event() is None  # one shot only


def test_status_byte_null_count_and_mode(board: Board) -> None:
    board.out(0x43, 0x34)
    board.out(0x40, 0x00)
    board.out(0x40, 0x10)
    board.out(0x43, 0xE2)
    assert board.inb(0x40) == 0x80 | 0x40 | 0x34  # OUT high, count not yet loaded
    board.at_tick(1)
    board.out(0x43, 0xE2)
    assert board.inb(0x40) == 0x80 | 0x34


def test_linux_clockevent_shutdown_leaves_no_irq(board: Board) -> None:
    board.out(0x43, 0x34)
    board.out(0x40, 0x9C)
    board.out(0x40, 0x2E)
    for value in (0x30, 0, 0, 0x30):  # clockevent_i8253_disable
        board.out(0x43 if value == 0x30 else 0x40, value)
    assert board.clock.next_event() is None
    board.at_tick(200_000)
    assert board.edges == []


def test_mode0_first_byte_stops_counting(board: Board) -> None:
    board.out(0x43, 0x30)
    board.out(0x40, 100)
    board.out(0x40, 0)
    board.at_tick(11)  # CE = 100 - 10 = 90
    board.out(0x40, 50)  # first byte only: counting stops
    board.at_tick(40)
    board.out(0x43, 0x00)
    assert board.read16(0x40) == 90
    board.out(0x40, 0)  # second byte: 50 loads on the next CLK, at tick 41
    assert board.clock.next_event() == first_cycle_of_tick(41 + 50)


def test_gate_low_suspends_mode0(board: Board) -> None:
    board.out(0x61, 0x01)
    board.out(0x43, 0xB0)
    board.out(0x42, 0x00)
    board.out(0x42, 0x01)  # 256
    board.at_tick(101)  # CE = 256 - 100 = 156
    board.out(0x61, 0x00)
    board.at_tick(500)
    assert board.read16(0x42) == 156
    board.out(0x61, 0x01)
    board.at_tick(510)
    assert board.read16(0x42) == 146


def test_mode1_triggered_by_gate(board: Board) -> None:
    board.out(0x43, 0xB2)  # counter 2, mode 1
    board.out(0x42, 5)
    board.out(0x42, 0)
    assert board.inb(0x61) & 0x20 == 0x20  # OUT high until a trigger
    board.at_tick(10)
    board.out(0x61, 0x01)  # GATE2 rises: loads at tick 11, OUT low until CE reaches 0
    board.at_tick(11)
    assert board.inb(0x61) & 0x20 == 0
    board.at_tick(15)
    assert board.inb(0x61) & 0x20 == 0
    board.at_tick(16)
    assert board.inb(0x61) & 0x20 == 0x20


def test_mode2_new_count_waits_for_the_period_end(board: Board) -> None:
    board.out(0x43, 0x34)
    board.out(0x40, 100)
    board.out(0x40, 0)
    board.at_tick(31)
    board.out(0x40, 10)
    board.out(0x40, 0)
    board.at_tick(100)
    assert board.read16(0x40) == 1  # the old period runs on: CE = 100 - 99
    board.at_tick(101)
    assert board.edges == [True, False]
    assert board.read16(0x40) == 10
    assert board.clock.next_event() == first_cycle_of_tick(111)


def test_bcd_counting(board: Board) -> None:
    board.out(0x43, 0x31)  # counter 0, mode 0, BCD
    board.out(0x40, 0x00)
    board.out(0x40, 0x10)  # 1000 decimal
    board.at_tick(2)
    assert board.read16(0x40) == 0x0999


def test_port_61_refresh_toggle_and_bits(board: Board) -> None:
    board.out(0x61, 0xFF)
    assert board.inb(0x61) & 0xCF == 0x0F  # bits 6-7 (error flags) read 0
    board.at_tick(17)
    assert board.inb(0x61) & 0x10 == 0
    board.at_tick(18)
    assert board.inb(0x61) & 0x10 == 0x10
    board.at_tick(36)
    assert board.inb(0x61) & 0x10 == 0


def test_pic_and_pit_together() -> None:
    """The lead's wiring: IRQ0 from counter 0 through the PIC to an INTA vector."""
    cpu = StubCpu()
    cpu.intr_requested = False  # type: ignore[attr-defined]
    clock = VirtualClock(cpu)  # type: ignore[arg-type]
    bus = IoBus()
    pic = PicPair(output=lambda level: setattr(cpu, "intr_requested", level))
    bus.claim(PicPair.PORTS, pic)
    pit = Pit(clock, irq0=lambda level: pic.set_irq(0, level))
    bus.claim(Pit.PORTS, pit)
    for port, value in ((0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, 0x01),
                        (0xA0, 0x11), (0xA1, 0x38), (0xA1, 0x02), (0xA1, 0x01),
                        (0x21, 0xFA), (0xA1, 0xFF),  # IRQ0 and the cascade unmasked
                        (0x43, 0x34), (0x40, 0x9C), (0x40, 0x2E)):
        bus.write(port, 1, value)
    period_end = first_cycle_of_tick(1 + 11932)
    cpu.tsc = period_end - 1
    clock.run_due()
    assert not cpu.intr_requested  # type: ignore[attr-defined]
    cpu.tsc = period_end
    clock.run_due()
    assert cpu.intr_requested  # type: ignore[attr-defined]
    assert pic.acknowledge() == 0x30
    assert not cpu.intr_requested  # type: ignore[attr-defined]
    bus.write(0x20, 1, 0x60)  # EOI
    cpu.tsc = first_cycle_of_tick(1 + 2 * 11932)
    clock.run_due()
    assert cpu.intr_requested  # type: ignore[attr-defined]
    assert pic.acknowledge() == 0x30


def test_mode3_gate_low_holds_out_high_and_rising_gate_reloads(board: Board) -> None:
    board.out(0x61, 0x01)
    board.out(0x43, 0xB6)  # counter 2, mode 3
    board.out(0x42, 8)
    board.out(0x42, 0)
    board.at_tick(6)  # e = 5: low half (CLKs 4-7), CE = 8 - 2 * 1 = 6
    assert board.inb(0x61) & 0x20 == 0
    board.out(0x61, 0x00)  # GATE low: OUT high at once, counting stops
    assert board.inb(0x61) & 0x20 == 0x20
    board.at_tick(50)
    assert board.read16(0x42) == 6
    board.out(0x61, 0x01)  # GATE rises: N reloaded on the next CLK (tick 51)
    board.at_tick(52)
    assert board.read16(0x42) == 8 - 2


def test_control_word_register_is_write_only(board: Board) -> None:
    # Datasheet, read/write operations: A1 A0 = 11 with RD is a no-operation (3-state),
    # so the PC's data bus floats to all ones.
    board.out(0x43, 0x34)
    assert board.inb(0x43) == 0xFF
