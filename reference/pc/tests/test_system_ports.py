"""Port 0x80 (PC AT DMA page register file: the unused page register, written with POST
codes, reads back) and port 0x92 (System Control Port A: IBM PS/2 reference and the
Intel PIIX/ICH datasheets: bit 0 fast reset on a 0-to-1 transition, bit 1 A20 gate);
Linux's arch/x86/boot/a20.c ``enable_a20_fast`` sequence. Expected values are written
here from those documents."""

from __future__ import annotations

from reference.pc.devices.system_ports import SystemPorts


class Rig:
    def __init__(self) -> None:
        self.resets = 0
        self.ports = SystemPorts(reset=self._reset)

    def _reset(self) -> None:
        self.resets += 1

    def inb(self, port: int) -> int:
        return self.ports.port_read(port, 1)

    def outb(self, value: int, port: int) -> None:
        self.ports.port_write(port, 1, value)


def test_ports() -> None:
    assert tuple(SystemPorts.PORTS) == (0x80, 0x92)


def test_post_codes_are_kept_and_read_back() -> None:
    r = Rig()
    r.outb(0x55, 0x80)
    assert r.ports.post_code == 0x55
    r.outb(0xFF, 0x80)  # the 8250 probe's bus-float guard
    assert r.ports.post_code == 0xFF
    assert r.inb(0x80) == 0xFF
    r.outb(0x00, 0x80)
    assert r.inb(0x80) == 0x00
    assert r.resets == 0


def test_port_a_power_on_has_a20_enabled_and_no_reset() -> None:
    r = Rig()
    assert r.inb(0x92) == 0x02
    assert r.ports.a20


def test_linux_enable_a20_fast_does_not_reset() -> None:
    r = Rig()
    port_a = r.inb(0x92)
    port_a |= 0x02
    port_a &= ~0x01
    r.outb(port_a, 0x92)
    assert r.resets == 0 and r.ports.a20


def test_a20_bit_reads_back_and_other_bits_read_0() -> None:
    r = Rig()
    r.outb(0xFC, 0x92)  # A20 off, every unimplemented bit written 1
    assert r.inb(0x92) == 0x00
    assert not r.ports.a20
    r.outb(0x02, 0x92)
    assert r.inb(0x92) == 0x02


def test_fast_reset_on_the_rising_edge_of_bit_0() -> None:
    r = Rig()
    r.outb(0x03, 0x92)
    assert r.resets == 1
    assert r.inb(0x92) == 0x03  # the bit stays set...
    r.outb(0x03, 0x92)
    assert r.resets == 1  # ...and a second write of 1 is no new edge
    r.outb(0x02, 0x92)
    r.outb(0x03, 0x92)
    assert r.resets == 2


def test_a_wide_access_reads_ones_past_the_port() -> None:
    r = Rig()
    r.outb(0x12, 0x80)
    assert r.ports.port_read(0x80, 2) == 0xFF12
