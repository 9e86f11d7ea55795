"""The PC's physical memory map: RAM from address 0, and the PCI memory hole below 4 GiB
where nothing of this machine answers.

On a PC the chipset sends a memory cycle above the top of RAM to PCI; when no device
claims it the bridge ends it with a master abort, so a read returns all ones and a write
is dropped (PCI Local Bus Specification 3.0, 3.3.3.1: "master-abort termination"). Guests
rely on that: Debian's 6.1 i386 kernel reads its stack canary through %fs before paging
is on (``load_ucode_bsp`` is built with the stack protector), at the canary's *virtual*
address, e.g. 0xC5E6A6E0, which is physical memory in that hole; the value read does not
matter as long as the function's epilogue reads the same one.

Only the hole from ``PCI_HOLE`` (0xC0000000, the usual start of the 32-bit PCI window on
a PC/AT with less than 3 GiB of RAM, and where the local APIC, I/O APIC, HPET and BIOS
flash would sit) to 4 GiB answers that way. An access between the end of RAM and the
hole, or an instruction fetch from the hole, stays an ``Unmapped`` miss: nothing a PC
would put there exists on this machine, so such an access is a wild pointer or an
emulator bug, and the machine stops to show it rather than run on with all ones.
Every page the hole answered for is remembered (``unclaimed``), as the I/O bus remembers
unclaimed ports, so a boot report can say which device the guest looked for.
"""

from __future__ import annotations

from typing import Set

from reference.faults import Unmapped
from reference.memory import PAGE_SHIFT, FlatMemory

PCI_HOLE = 0xC000_0000
"""First address of the PCI memory hole (inclusive); it ends at 4 GiB."""
FOUR_GIB = 1 << 32
OPEN_BUS = 0xFF
"""What a master-aborted read returns in every byte lane."""


class MemoryMap(FlatMemory):
    """RAM of ``size`` bytes at 0 (``self.ram``, as ``FlatMemory``) and the PCI hole.

    The RAM path is ``FlatMemory``'s, tested first so it costs what it did; only an
    access that leaves RAM takes the byte-by-byte path below."""

    def __init__(self, size: int, hole: int = PCI_HOLE) -> None:
        if size > hole:
            raise ValueError(f"{size >> 20} MiB of RAM would overlap the PCI hole at "
                             f"{hole:#x}")
        super().__init__(size)
        self.hole = hole
        self.unclaimed: Set[int] = set()
        """Base addresses of the 4 KiB pages of the hole that were read or written."""

    def read_bytes(self, address: int, count: int, access: str = "read") -> bytes:
        ram = self.ram
        if address + count <= len(ram):
            return bytes(ram[address:address + count])
        return bytes(self._outside(address, count, access))

    def write_bytes(self, address: int, data: bytes) -> None:
        ram = self.ram
        end = address + len(data)
        if end <= len(ram):
            ram[address:end] = data
            return
        self._outside(address, len(data), "write")  # checks every byte before any lands
        for i, byte in enumerate(data):
            if address + i < len(ram):
                ram[address + i] = byte

    def _outside(self, address: int, count: int, access: str) -> bytearray:
        """The bytes of an access that leaves RAM: RAM's where it still is, all ones in
        the hole; ``Unmapped`` for a byte elsewhere or for a fetch from the hole."""
        ram = self.ram
        values = bytearray()
        pages = set()
        for i in range(count):
            at = address + i
            if at < len(ram):
                values.append(ram[at])
            elif self.hole <= at < FOUR_GIB and access != "fetch":
                pages.add(at >> PAGE_SHIFT << PAGE_SHIFT)
                values.append(OPEN_BUS)
            else:
                raise Unmapped(address, access)
        self.unclaimed |= pages  # only once the whole access is known to be served
        return values
