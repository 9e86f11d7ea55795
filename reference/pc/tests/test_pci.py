"""PCI configuration mechanism #1 against the PCI Local Bus Specification (3.7.4.1:
CONFIG_ADDRESS layout, dword-only address register, byte/word/dword data at 0xCFC +
(reg & 3), master abort reading all ones) and the 82441FX (440FX) datasheet's host
bridge header; and Linux 6.1's probe (arch/x86/pci/direct.c: pci_check_type1,
pci_sanity_check, pci_check_type2, pci_conf1_read/write). Expected values are written
here from those documents."""

from __future__ import annotations

from typing import List

from reference.pc.devices.pci import PciHost


def conf1_address(bus: int, devfn: int, reg: int) -> int:
    """PCI_CONF1_ADDRESS as direct.c builds it (extended register bits left out)."""
    return 0x80000000 | (bus << 16) | (devfn << 8) | (reg & 0xFC)


class Linux:
    """direct.c's accessors over the device."""

    def __init__(self, pci: PciHost) -> None:
        self.pci = pci

    def outb(self, value: int, port: int) -> None:
        self.pci.port_write(port, 1, value)

    def outl(self, value: int, port: int) -> None:
        self.pci.port_write(port, 4, value)

    def inb(self, port: int) -> int:
        return self.pci.port_read(port, 1)

    def inl(self, port: int) -> int:
        return self.pci.port_read(port, 4)

    def conf1_read(self, bus: int, devfn: int, reg: int, length: int) -> int:
        self.outl(conf1_address(bus, devfn, reg), 0xCF8)
        if length == 1:
            return self.inb(0xCFC + (reg & 3))
        if length == 2:
            return self.pci.port_read(0xCFC + (reg & 2), 2)
        return self.inl(0xCFC)

    def conf1_write(self, bus: int, devfn: int, reg: int, length: int, value: int) -> None:
        self.outl(conf1_address(bus, devfn, reg), 0xCF8)
        port = 0xCFC + (reg & (3 if length == 1 else 2 if length == 2 else 0))
        self.pci.port_write(port, length, value)

    def sanity_check(self) -> bool:
        """pci_sanity_check with no DMI (a BIOS year before 2001 makes it scan)."""
        for devfn in range(0x100):
            x = self.conf1_read(0, devfn, 0x0A, 2)  # o->read(seg 0, bus 0, devfn, PCI_CLASS_DEVICE)
            if x in (0x0600, 0x0300):  # PCI_CLASS_BRIDGE_HOST, PCI_CLASS_DISPLAY_VGA
                return True
            x = self.conf1_read(0, devfn, 0x00, 2)  # PCI_VENDOR_ID
            if x in (0x8086, 0x0E11):  # Intel, Compaq
                return True
        return False

    def check_type1(self) -> bool:
        self.outb(0x01, 0xCFB)
        tmp = self.inl(0xCF8)
        self.outl(0x80000000, 0xCF8)
        works = self.inl(0xCF8) == 0x80000000 and self.sanity_check()
        self.outl(tmp, 0xCF8)
        return works

    def check_type2(self) -> bool:
        self.outb(0x00, 0xCFB)
        self.outb(0x00, 0xCF8)
        self.outb(0x00, 0xCFA)
        return self.inb(0xCF8) == 0x00 and self.inb(0xCFA) == 0x00


def test_ports_are_cf8_to_cff() -> None:
    assert list(PciHost.PORTS) == list(range(0xCF8, 0xD00))


def test_address_register_is_dword_only_and_keeps_its_defined_bits() -> None:
    pci = PciHost()
    pci.port_write(0xCF8, 4, 0x80001234)
    assert pci.port_read(0xCF8, 4) == 0x80001234
    pci.port_write(0xCF8, 4, 0xFFFFFFFF)
    assert pci.port_read(0xCF8, 4) == 0x80FFFFFC  # bits 30-24 and 1-0 reserved: 0
    for port in range(0xCF8, 0xCFC):
        pci.port_write(port, 1, 0x00)
        assert pci.port_read(port, 1) == 0xFF  # not the register: ISA, nothing there
    pci.port_write(0xCF8, 2, 0x0000)
    assert pci.port_read(0xCF8, 2) == 0xFFFF
    assert pci.port_read(0xCF8, 4) == 0x80FFFFFC


def test_host_bridge_header_by_dwords() -> None:
    linux = Linux(PciHost())
    assert linux.conf1_read(0, 0, 0x00, 4) == 0x1237_8086  # device, vendor
    assert linux.conf1_read(0, 0, 0x04, 4) == 0x0280_0006  # status, command
    assert linux.conf1_read(0, 0, 0x08, 4) == 0x0600_0002  # class 06 00 00, revision 02
    assert linux.conf1_read(0, 0, 0x0C, 4) == 0x0000_0000  # BIST, header type 0, ...
    for reg in range(0x10, 0x100, 4):  # no BARs, no capabilities, no interrupt pin
        assert linux.conf1_read(0, 0, reg, 4) == 0, hex(reg)


def test_byte_and_word_data_accesses_pick_the_offset_from_the_port() -> None:
    linux = Linux(PciHost())
    assert [linux.conf1_read(0, 0, reg, 1) for reg in range(4)] == [0x86, 0x80, 0x37, 0x12]
    assert linux.conf1_read(0, 0, 0x02, 2) == 0x1237
    assert linux.conf1_read(0, 0, 0x0A, 2) == 0x0600
    assert linux.conf1_read(0, 0, 0x0B, 1) == 0x06


def test_read_only_and_writable_bits_of_the_bridge() -> None:
    linux = Linux(PciHost())
    linux.conf1_write(0, 0, 0x00, 4, 0)
    assert linux.conf1_read(0, 0, 0x00, 4) == 0x1237_8086
    linux.conf1_write(0, 0, 0x04, 2, 0xFFFF)
    assert linux.conf1_read(0, 0, 0x04, 2) == 0x0146  # + SERR# (8) and parity (6) enables
    linux.conf1_write(0, 0, 0x06, 2, 0xFFFF)  # write 1 to clear: no error was set
    assert linux.conf1_read(0, 0, 0x06, 2) == 0x0280
    linux.conf1_write(0, 0, 0x0D, 1, 0xFF)
    assert linux.conf1_read(0, 0, 0x0D, 1) == 0xF8  # latency timer, 8-clock granularity
    linux.conf1_write(0, 0, 0x59, 1, 0x30)  # a PAM register: not modelled
    assert linux.conf1_read(0, 0, 0x59, 1) == 0


def test_absent_functions_master_abort() -> None:
    linux = Linux(PciHost())
    for bus, devfn in ((0, 0x01), (0, 0x08), (0, 0xF8), (1, 0x00), (255, 0xFF)):
        assert linux.conf1_read(bus, devfn, 0x00, 4) == 0xFFFFFFFF
        assert linux.conf1_read(bus, devfn, 0x00, 2) == 0xFFFF
        linux.conf1_write(bus, devfn, 0x04, 2, 0x0007)
        assert linux.conf1_read(bus, devfn, 0x04, 2) == 0xFFFF


def test_disabled_mechanism_reads_ones() -> None:
    pci = PciHost()
    pci.port_write(0xCF8, 4, 0x00000000)  # bus 0 device 0 reg 0, enable clear
    assert pci.port_read(0xCFC, 4) == 0xFFFFFFFF
    pci.port_write(0xCFC, 2, 0)
    pci.port_write(0xCF8, 4, 0x80000000)
    assert pci.port_read(0xCFC, 4) == 0x1237_8086


def test_linux_picks_type_1_and_its_sanity_check_passes() -> None:
    pci = PciHost()
    linux = Linux(pci)
    assert linux.check_type1()
    assert pci.port_read(0xCF8, 4) == 0  # the probe restored the register it found
    assert not linux.check_type2()  # were type 1 to fail, type 2 would not be taken


def test_a_bus_0_scan_finds_only_the_host_bridge() -> None:
    linux = Linux(PciHost())
    found: List[int] = [
        devfn for devfn in range(256) if linux.conf1_read(0, devfn, 0x00, 2) != 0xFFFF
    ]
    assert found == [0]
    assert linux.conf1_read(0, 0, 0x0E, 1) & 0x80 == 0  # single function: no 00:00.1 scan
