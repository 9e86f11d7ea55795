"""The 8259A pair against the datasheet (Intel 231468) and Linux's i8259.c.

Every expected vector, register and INT level below is worked out by hand from the
datasheet's priority and command descriptions, with Linux's vector bases 0x20 / 0x28.
"""

from __future__ import annotations

from typing import List

import pytest

from reference.pc.bus import IoBus
from reference.pc.devices.pic import PicPair

MASTER_CMD, MASTER_DATA, SLAVE_CMD, SLAVE_DATA = 0x20, 0x21, 0xA0, 0xA1


class Board:
    """A PicPair on a bus, recording every change of its INT output."""

    def __init__(self) -> None:
        self.levels: List[bool] = []
        self.pic = PicPair(output=self.levels.append)
        self.bus = IoBus()
        self.bus.claim(PicPair.PORTS, self.pic)

    @property
    def intr(self) -> bool:
        return bool(self.levels) and self.levels[-1]

    def out(self, port: int, value: int) -> None:
        self.bus.write(port, 1, value)

    def inb(self, port: int) -> int:
        return self.bus.read(port, 1)

    def linux_init(self, master_icw4: int = 0x01) -> None:
        """init_8259A(): ICW1 0x11, ICW2 0x20 / 0x28, ICW3 0x04 / 0x02, ICW4 8086 mode,
        then every IRQ unmasked (Linux unmasks each one as a driver asks for it)."""
        self.out(MASTER_DATA, 0xFF)
        for cmd, data, icw2, icw3, icw4 in ((MASTER_CMD, MASTER_DATA, 0x20, 0x04, master_icw4),
                                            (SLAVE_CMD, SLAVE_DATA, 0x28, 0x02, 0x01)):
            self.out(cmd, 0x11)
            self.out(data, icw2)
            self.out(data, icw3)
            self.out(data, icw4)
        self.out(MASTER_DATA, 0x00)
        self.out(SLAVE_DATA, 0x00)

    def isr(self, cmd: int) -> int:
        self.out(cmd, 0x0B)  # OCW3: read ISR
        value = self.inb(cmd)
        self.out(cmd, 0x0A)  # OCW3: back to IRR, as i8259A_irq_real does
        return value

    def pulse(self, irq: int) -> None:
        self.pic.set_irq(irq, True)
        self.pic.set_irq(irq, False)


@pytest.fixture
def board() -> Board:
    b = Board()
    b.linux_init()
    return b


def test_probe_reads_back_the_mask() -> None:
    # probe_8259A: slave masked, master masked but for the cascade, read back.
    b = Board()
    b.out(SLAVE_DATA, 0xFF)
    b.out(MASTER_DATA, 0xFB)
    assert b.inb(MASTER_DATA) == 0xFB
    assert b.inb(SLAVE_DATA) == 0xFF


def test_icw1_clears_the_mask() -> None:
    b = Board()
    b.out(MASTER_DATA, 0xFF)
    b.out(MASTER_CMD, 0x11)
    b.out(MASTER_DATA, 0x20)
    b.out(MASTER_DATA, 0x04)
    b.out(MASTER_DATA, 0x01)
    assert b.inb(MASTER_DATA) == 0x00  # datasheet: "the Interrupt Mask Register is cleared"
    b.out(MASTER_DATA, 0x5A)  # after ICW4, a data write is OCW1 again
    assert b.inb(MASTER_DATA) == 0x5A


def test_timer_interrupt_and_specific_eoi(board: Board) -> None:
    board.pulse(0)
    assert board.intr
    assert board.pic.acknowledge() == 0x20
    assert not board.intr
    assert board.isr(MASTER_CMD) == 0x01
    board.out(MASTER_CMD, 0x60)  # mask_and_ack_8259A: specific EOI for IR0
    assert board.isr(MASTER_CMD) == 0x00


def test_slave_irq_through_the_cascade(board: Board) -> None:
    board.pulse(12)
    assert board.intr
    assert board.pic.acknowledge() == 0x28 + 4
    assert board.isr(MASTER_CMD) == 0x04  # IR2: the cascade is in service on the master
    assert board.isr(SLAVE_CMD) == 0x10
    board.out(SLAVE_CMD, 0x60 + 4)  # specific EOI to the slave, then master IR2
    board.out(MASTER_CMD, 0x60 + 2)
    assert (board.isr(MASTER_CMD), board.isr(SLAVE_CMD)) == (0, 0)


def test_fully_nested_priority(board: Board) -> None:
    board.pulse(1)
    board.pulse(0)
    assert board.pic.acknowledge() == 0x20  # IR0 beats IR1
    assert not board.intr  # IR1 waits while IR0 is in service
    board.out(MASTER_CMD, 0x20)  # non-specific EOI clears IR0, the highest in service
    assert board.intr
    assert board.pic.acknowledge() == 0x21


def test_higher_priority_interrupts_a_lower_one_in_service(board: Board) -> None:
    board.pulse(3)
    assert board.pic.acknowledge() == 0x23
    board.pulse(1)
    assert board.intr
    assert board.pic.acknowledge() == 0x21
    assert board.isr(MASTER_CMD) == 0x0A
    board.out(MASTER_CMD, 0x20)  # non-specific EOI: IR1 (the highest) goes first
    assert board.isr(MASTER_CMD) == 0x08


def test_slave_irqs_rank_at_the_cascade_position(board: Board) -> None:
    # Priorities on the PC: 0, 1, (8..15 via IR2), 3..7.
    board.pulse(3)
    board.pulse(9)
    assert board.pic.acknowledge() == 0x29
    board.pulse(1)
    assert board.intr  # IR1 > IR2 in service
    assert board.pic.acknowledge() == 0x21


def test_edge_mode_latches_one_request_per_rising_edge(board: Board) -> None:
    board.pic.set_irq(4, True)
    board.pic.set_irq(4, True)  # still high: no new edge
    assert board.pic.acknowledge() == 0x24
    board.out(MASTER_CMD, 0x64)
    assert not board.intr
    board.pic.set_irq(4, False)
    board.pic.set_irq(4, True)
    assert board.intr


def test_irr_read(board: Board) -> None:
    board.out(MASTER_DATA, 0xFF)
    board.pulse(5)
    board.pulse(6)
    assert not board.intr  # masked requests still latch in IRR
    assert board.inb(MASTER_CMD) == 0x60  # IRR is selected after ICW1
    board.out(MASTER_DATA, 0xBF)  # unmask IR6
    assert board.intr
    assert board.pic.acknowledge() == 0x26


def test_spurious_irq7_when_the_request_goes_away() -> None:
    b = Board()
    b.linux_init()
    b.out(0x4D0, 0x20)  # ELCR: IRQ5 level triggered
    b.pic.set_irq(5, True)
    assert b.intr
    b.pic.set_irq(5, False)
    assert not b.intr
    assert b.pic.acknowledge() == 0x27  # "default IR7"
    assert b.isr(MASTER_CMD) == 0  # a spurious IR7 does not set ISR


def test_level_mode_rerequests_after_eoi() -> None:
    b = Board()
    b.out(MASTER_CMD, 0x19)  # ICW1 with LTIM
    b.out(MASTER_DATA, 0x20)
    b.out(MASTER_DATA, 0x04)
    b.out(MASTER_DATA, 0x01)
    b.pic.set_irq(6, True)
    assert b.pic.acknowledge() == 0x26
    assert not b.intr
    b.out(MASTER_CMD, 0x66)
    assert b.intr  # the line is still high


def test_elcr_hardwired_edge_bits() -> None:
    b = Board()
    b.out(0x4D0, 0xFF)
    b.out(0x4D1, 0xFF)
    assert (b.inb(0x4D0), b.inb(0x4D1)) == (0xF8, 0xDE)


def test_auto_eoi() -> None:
    b = Board()
    b.linux_init(master_icw4=0x03)
    b.pulse(5)
    assert b.pic.acknowledge() == 0x25
    assert b.isr(MASTER_CMD) == 0
    b.pulse(7)
    assert b.intr  # nothing in service blocks IR7


def test_set_priority_command(board: Board) -> None:
    board.out(MASTER_CMD, 0xC3)  # OCW2 set priority: IR3 lowest, so IR4 highest
    board.pulse(1)
    board.pulse(5)
    # Order now 4 5 6 7 0 1 2 3: IR5 before IR1.
    assert board.pic.acknowledge() == 0x25


def test_rotate_on_non_specific_eoi(board: Board) -> None:
    board.pulse(0)
    assert board.pic.acknowledge() == 0x20
    board.out(MASTER_CMD, 0xA0)  # rotate on non-specific EOI: IR0 becomes lowest
    board.pulse(0)
    board.pulse(7)
    assert board.pic.acknowledge() == 0x27  # order 1..7, 0


def test_poll_command(board: Board) -> None:
    board.pulse(3)
    board.out(MASTER_CMD, 0x0C)  # OCW3 poll
    assert board.inb(MASTER_CMD) == 0x83
    assert board.isr(MASTER_CMD) == 0x08
    board.out(MASTER_CMD, 0x0C)
    assert board.inb(MASTER_CMD) == 0x00  # no request: I = 0


def test_special_mask_mode(board: Board) -> None:
    board.pulse(3)
    assert board.pic.acknowledge() == 0x23
    board.out(MASTER_DATA, 0x08)  # mask the level in service
    board.pulse(5)
    assert not board.intr  # fully nested: IR5 < IR3 in service
    board.out(MASTER_CMD, 0x68)  # OCW3: ESMM + SMM
    assert board.intr
    assert board.pic.acknowledge() == 0x25
    board.out(MASTER_CMD, 0x48)  # reset special mask mode
    board.out(MASTER_CMD, 0x65)
    assert board.isr(MASTER_CMD) == 0x08


def test_output_changes_are_reported_once(board: Board) -> None:
    board.levels.clear()
    board.pulse(0)
    board.pulse(1)
    board.pic.acknowledge()
    assert board.levels == [True, False]


@pytest.mark.parametrize("master_icw4, nested_request_passes", [(0x01, False), (0x11, True)],
                         ids=["fully-nested", "special-fully-nested"])
def test_special_fully_nested_mode(master_icw4: int, nested_request_passes: bool) -> None:
    b = Board()
    b.linux_init(master_icw4=master_icw4)
    b.pulse(12)
    assert b.pic.acknowledge() == 0x2C  # master IR2 and slave IR4 in service
    b.pulse(9)  # slave IR1: higher than its IR4 in service, so the slave's INT rises
    # Fully nested: the master's IR2 in service blocks it. SFNM: the master lets a
    # request from its in-service slave through.
    assert b.intr == nested_request_passes
    if nested_request_passes:
        assert b.pic.acknowledge() == 0x29
