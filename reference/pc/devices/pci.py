"""PCI configuration mechanism #1 with one device: the Intel 440FX host bridge (82441FX
PMC) at bus 0, device 0, function 0.

Shaped like the PCI Local Bus Specification 2.1 section 3.7.4.1 (configuration
mechanism #1) and the 82441FX datasheet's register table:
- CONFIG_ADDRESS at 0xCF8 answers only 32-bit accesses: bit 31 enable, bits 23-16 bus,
  15-11 device, 10-8 function, 7-2 register; bits 30-24 and 1-0 are reserved and read
  0. A byte or word access to 0xCF8-0xCFB is not the register: the bridge passes it on
  to ISA, where nothing answers (reads all ones, writes go nowhere). That is what makes
  Linux's mechanism #2 probe (arch/x86/pci/direct.c, ``pci_check_type2``: byte writes of
  0 to 0xCFB/0xCF8/0xCFA, then byte reads expecting 0) fail, and ``pci_check_type1``
  (dword 0x80000000 written and read back) succeed;
- CONFIG_DATA at 0xCFC-0xCFF: a byte, word or dword at offset ``(address & 0xFC) +
  (port - 0xCFC)`` of the selected function's 256-byte configuration space, while bit 31
  is set; with it clear the access is an ordinary I/O cycle to nothing (all ones);
- the host bridge's header (type 0, single function): vendor 8086, device 1237,
  command 0006 (memory access and bus master, hardwired on; only SERR# and parity error
  enables are writable), status 0280 (fast back-to-back capable, medium DEVSEL; the
  error bits never set, so their write-1-to-clear has nothing to do), revision 02
  (the datasheet's value is per stepping; 02 is what QEMU's i440FX reports), class
  06 00 00 (host bridge), latency timer bits 7-3 writable, header type 00;
  Linux's ``pci_sanity_check`` finds class 0600 at 00:00.0;
- every other bus, device and function: no device (master abort): reads all ones
  (vendor FFFF), writes dropped.

Not modelled: the 82441FX device-specific registers 0x40-0xFF (PAM shadowing, SMRAM,
DRAM rows, ...: they read 0 and ignore writes), the PIIX3 and every other PCI device,
mechanism #2, the reset control register at 0xCF9 (a byte access there reads all ones),
extended (AMD ECS) register bits 27-24 (reserved here).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

CONFIG_ADDRESS = 0xCF8
CONFIG_DATA = 0xCFC
ENABLE = 0x80000000
ADDRESS_BITS = 0x80FFFFFC  # enable, bus, device, function, register

# Type 0 header offsets
VENDOR_ID = 0x00
DEVICE_ID = 0x02
COMMAND = 0x04
STATUS = 0x06
REVISION_ID = 0x08
CLASS_CODE = 0x09  # programming interface, sub-class, base class
LATENCY_TIMER = 0x0D
HEADER_TYPE = 0x0E


def _little(offset: int, value: int, size: int) -> Dict[int, int]:
    return {offset + i: (value >> (8 * i)) & 0xFF for i in range(size)}


class HostBridge440FX:
    """The 82441FX PCI and memory controller as function 00:00.0."""

    INITIAL: Dict[int, int] = {
        **_little(VENDOR_ID, 0x8086, 2),
        **_little(DEVICE_ID, 0x1237, 2),
        **_little(COMMAND, 0x0006, 2),
        **_little(STATUS, 0x0280, 2),
        REVISION_ID: 0x02,
        **_little(CLASS_CODE, 0x060000, 3),
        HEADER_TYPE: 0x00,
    }
    WRITABLE: Dict[int, int] = {
        COMMAND: 0x40,  # PERRE: parity error response
        COMMAND + 1: 0x01,  # SERRE: SERR# enable
        LATENCY_TIMER: 0xF8,
    }
    """Bits a write can change, by byte offset; all others are read-only."""

    def __init__(self) -> None:
        self.space = bytearray(256)
        for offset, value in self.INITIAL.items():
            self.space[offset] = value

    def read(self, offset: int) -> int:
        return self.space[offset]

    def write(self, offset: int, value: int) -> None:
        mask = self.WRITABLE.get(offset, 0)
        self.space[offset] = (self.space[offset] & ~mask) | (value & mask)


class PciHost:
    """Ports 0xCF8-0xCFF: configuration mechanism #1 in front of the host bridge."""

    PORTS = range(CONFIG_ADDRESS, CONFIG_DATA + 4)

    def __init__(self) -> None:
        self.address = 0
        self.bridge = HostBridge440FX()
        self._functions: Dict[Tuple[int, int, int], HostBridge440FX] = {(0, 0, 0): self.bridge}

    def port_read(self, port: int, size: int) -> int:
        if port == CONFIG_ADDRESS and size == 4:
            return self.address
        target = self._target(port)
        if target is None:
            return (1 << (8 * size)) - 1
        function, offset = target
        value = 0
        for i in range(size):
            value |= function.read((offset + i) & 0xFF) << (8 * i)
        return value

    def port_write(self, port: int, size: int, value: int) -> None:
        if port == CONFIG_ADDRESS and size == 4:
            self.address = value & ADDRESS_BITS
            return
        target = self._target(port)
        if target is None:
            return
        function, offset = target
        for i in range(size):
            function.write((offset + i) & 0xFF, (value >> (8 * i)) & 0xFF)

    def _target(self, port: int) -> Optional[Tuple[HostBridge440FX, int]]:
        """The function and register a CONFIG_DATA access reaches, or None: not a data
        port, mechanism disabled, or no device there (master abort)."""
        if port < CONFIG_DATA or not self.address & ENABLE:
            return None
        bus = (self.address >> 16) & 0xFF
        device = (self.address >> 11) & 0x1F
        function = (self.address >> 8) & 0x07
        found = self._functions.get((bus, device, function))
        if found is None:
            return None
        return found, (self.address & 0xFC) + (port - CONFIG_DATA)
