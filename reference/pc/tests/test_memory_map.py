"""The PC's physical memory map (``reference.pc.memory_map``): RAM from 0, and the PCI
hole from 0xC0000000 to 4 GiB where an unclaimed cycle ends in a master abort (PCI Local
Bus Specification 3.0, 3.3.3.1): reads return all ones in every byte lane, writes are
dropped. Anything else outside RAM stays an ``Unmapped`` miss the machine stops on.

Expected values are written from that rule: an n-byte read in the hole is 2**(8n) - 1.
The last test replays what stopped the Debian 6.1 kernel: its pre-paging C code
(``load_ucode_bsp``, built with the stack protector) reads the canary at %fs:0xC5E6A6E0
with a flat %fs, and compares it with a second read at the function's end.
"""

from __future__ import annotations

import pytest

from reference.faults import Unmapped
from reference.pc.memory_map import PCI_HOLE, MemoryMap
from reference.pc.tests.test_machine import RAM, le32, machine

SIZE = 1 << 20


@pytest.mark.parametrize("count", [1, 2, 4])
def test_a_read_in_the_pci_hole_is_all_ones(count):
    memory = MemoryMap(SIZE)
    for address in (PCI_HOLE, 0xC5E6A6E0, 0xFEE00020, (1 << 32) - count):
        assert memory.read_int(address, count) == (1 << (8 * count)) - 1


def test_a_write_in_the_hole_is_dropped_and_its_page_remembered():
    memory = MemoryMap(SIZE)
    memory.write_int(0xFEE000F0, 4, 0x12345678)   # where a local APIC's SVR would be
    assert memory.read_int(0xFEE000F0, 4) == 0xFFFFFFFF
    assert memory.unclaimed == {0xFEE00000}
    memory.read_int(0xFED00000, 4)                # an HPET probe
    assert memory.unclaimed == {0xFEE00000, 0xFED00000}


def test_ram_is_unchanged_by_the_hole():
    memory = MemoryMap(SIZE)
    memory.write_int(SIZE - 4, 4, 0xCAFEF00D)
    assert memory.read_int(SIZE - 4, 4) == 0xCAFEF00D
    assert memory.read_bytes(SIZE - 4, 4) == bytes([0x0D, 0xF0, 0xFE, 0xCA])
    assert memory.unclaimed == set()


@pytest.mark.parametrize("address, count", [
    (SIZE, 1),             # the first byte past RAM
    (SIZE - 2, 4),         # straddles the end of RAM into nothing
    (PCI_HOLE - 4, 4),     # just below the hole
    ((1 << 32) - 2, 4),    # runs past 4 GiB
])
def test_outside_ram_and_the_hole_is_unmapped(address, count):
    memory = MemoryMap(SIZE)
    with pytest.raises(Unmapped):
        memory.read_int(address, count)
    with pytest.raises(Unmapped):
        memory.write_int(address, count, 0)
    assert memory.unclaimed == set()


def test_a_failed_write_straddling_ram_leaves_ram_untouched():
    memory = MemoryMap(SIZE)
    memory.write_int(SIZE - 2, 2, 0xBEEF)
    with pytest.raises(Unmapped):
        memory.write_int(SIZE - 2, 4, 0x11223344)
    assert memory.read_int(SIZE - 2, 2) == 0xBEEF


def test_an_instruction_fetch_from_the_hole_is_unmapped():
    memory = MemoryMap(SIZE)
    with pytest.raises(Unmapped):
        memory.read_int(0xFFFFFFF0, 1, "fetch")  # the reset vector: no BIOS ROM here


def test_an_access_across_the_top_of_ram_into_a_hole_splits_by_byte():
    memory = MemoryMap(0x2000, hole=0x2000)      # RAM ends where the hole starts
    memory.write_int(0x1FFE, 4, 0x11223344)      # low two bytes land in RAM
    assert memory.read_bytes(0x1FFE, 2) == bytes([0x44, 0x33])
    assert memory.read_int(0x1FFE, 4) == 0xFFFF3344


def test_ram_may_not_reach_into_the_hole():
    with pytest.raises(ValueError):
        MemoryMap(PCI_HOLE + 0x1000)


def test_a_guest_reading_its_canary_in_the_hole_runs_on():
    canary = 0xC5E6A6E0
    pc = machine(bytes([
        0x64, 0xA1, *le32(canary),        # mov eax, fs:[canary]      the prologue's read
        0x89, 0x1D, *le32(canary),        # mov [canary], ebx         a write goes nowhere
        0x64, 0x8B, 0x0D, *le32(canary),  # mov ecx, fs:[canary]      the epilogue's read
        0xF4,                             # hlt (IF clear: the machine stops halted)
    ]))
    pc.cpu.set_reg("ebx", 0x01020304)
    stop = pc.run(100)
    assert stop.reason == "halted", stop
    assert pc.cpu.get_reg("eax") == 0xFFFFFFFF
    assert pc.cpu.get_reg("ecx") == 0xFFFFFFFF
    assert pc.ram.unclaimed == {canary & ~0xFFF}


def test_a_guest_access_between_ram_and_the_hole_still_stops():
    address = RAM + 0x1000
    stop = machine(bytes([0x8B, 0x05, *le32(address)])).run(100)  # mov eax, [address]
    assert stop.reason == "unmapped" and f"{address:#x}" in stop.detail
