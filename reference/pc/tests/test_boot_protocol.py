"""The 32-bit boot protocol loader, against a synthetic bzImage whose header fields are
written here from Documentation/arch/x86/boot.rst's table (offsets and meanings)."""

from __future__ import annotations

import struct

import pytest

from reference.cpu import Cpu
from reference.memory import FlatMemory
from reference.operands import CS, DS, SS
from reference.pc import boot_protocol as bp

RAM = 32 << 20


def fake_bzimage(setup_sects: int = 4, protocol: int = 0x020F, payload: bytes = b"\x90" * 64,
                 loadflags: int = 1) -> bytes:
    image = bytearray((setup_sects + 1) * 512)
    image[0x1F1] = setup_sects
    struct.pack_into("<H", image, 0x1FE, 0xAA55)
    image[0x200:0x202] = b"\xeb\x66"          # jmp over a header that ends at 0x268
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", image, 0x206, protocol)
    image[0x211] = loadflags
    struct.pack_into("<I", image, 0x214, 0x100000)   # code32_start
    struct.pack_into("<I", image, 0x22C, 0x37FFFFFF)  # initrd_addr_max
    struct.pack_into("<I", image, 0x238, 2047)        # cmdline_size
    image += payload
    return bytes(image.ljust(0x1000, b"\0"))


def boot(image: bytes, initrd: bytes = b"", line: str = "console=ttyS0"):
    cpu = Cpu(FlatMemory(RAM), "prot32")
    placement = bp.load(cpu, RAM, image, initrd or None, line)
    return cpu, placement


def test_entry_state_is_what_the_protocol_states():
    cpu, placement = boot(fake_bzimage())
    assert cpu.eip == 0x100000
    assert cpu.regs[6] == placement.boot_params == bp.BOOT_PARAMS   # ESI
    assert cpu.regs[3] == cpu.regs[5] == cpu.regs[7] == 0             # EBX, EBP, EDI
    assert cpu.sregs[CS] == 0x10 and cpu.sregs[DS] == cpu.sregs[SS] == 0x18
    assert cpu.seg_base[CS] == 0 and cpu.seg_limit[CS] == 0xFFFFFFFF
    assert cpu.default_size == 32 and cpu.stack_size == 32
    assert not cpu.flags.value & 0x200                                # IF = 0
    assert cpu.mem.read_bytes(0x100000, 4) == b"\x90" * 4             # protected-mode part


def test_boot_params_carry_the_header_and_what_the_loader_owns():
    image = fake_bzimage()
    cpu, placement = boot(image, initrd=b"I" * 5000, line="console=ttyS0 quiet")
    params = cpu.mem.read_bytes(bp.BOOT_PARAMS, 4096)
    assert params[0x202:0x206] == b"HdrS" and params[0x1F1] == 4      # header copied
    assert params[0x210] == 0xFF                                      # type_of_loader
    cmdline = struct.unpack_from("<I", params, 0x228)[0]
    assert cpu.mem.read_bytes(cmdline, 20) == b"console=ttyS0 quiet\0"
    address, size = struct.unpack_from("<II", params, 0x218)
    assert size == 5000 and address % 4096 == 0 and address + size <= RAM
    assert cpu.mem.read_bytes(address, 5000) == b"I" * 5000
    assert placement.initrd == (address, size)
    entries = params[0x1E8]
    table = [struct.unpack_from("<QQI", params, 0x2D0 + 20 * i) for i in range(entries)]
    usable = [(base, size) for base, size, kind in table if kind == 1]
    assert (0x100000, RAM - 0x100000) in usable                       # all RAM above 1 MiB
    assert all(base + size <= 0xA0000 for base, size in usable if base < 0x100000)


@pytest.mark.parametrize("change, words", [
    (lambda image: image[:0x800], "too short"),
    (lambda image: image[:0x1FE] + b"\0\0" + image[0x200:], "no setup header"),
    (lambda image: image[:0x202] + b"HdrX" + image[0x206:], "no setup header"),
])
def test_a_damaged_file_is_refused_with_a_reason(change, words):
    with pytest.raises(bp.BootError, match=words):
        boot(change(fake_bzimage()))


def test_old_protocols_and_zimages_are_refused():
    with pytest.raises(bp.BootError, match="older than 2.06"):
        boot(fake_bzimage(protocol=0x0204))
    with pytest.raises(bp.BootError, match="zImage"):
        boot(fake_bzimage(loadflags=0))


def test_a_command_line_longer_than_the_kernel_takes_is_refused():
    with pytest.raises(bp.BootError, match="at most 2047"):
        boot(fake_bzimage(), line="x" * 3000)


def test_an_initrd_larger_than_ram_is_refused():
    with pytest.raises(bp.BootError, match="does not fit"):
        boot(fake_bzimage(), initrd=b"\0" * RAM)
