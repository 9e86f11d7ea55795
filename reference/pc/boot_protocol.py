"""Our own loader for the Linux/x86 32-bit boot protocol (the kernel's
Documentation/arch/x86/boot.rst, "32-bit BOOT PROTOCOL"). No BIOS runs on this path.

A bzImage is a real-mode setup program (``setup_sects`` + 1 sectors, with the setup
header at offset 0x1F1) followed by the protected-mode kernel. A 32-bit loader:
1. copies the setup header into a zeroed ``boot_params`` ("zero page") at the same
   offsets, fills in what a loader owns: ``type_of_loader``, ``cmd_line_ptr``, the
   initrd's address and size, and the e820 memory map;
2. puts the protected-mode kernel at ``code32_start`` (1 MiB), the initrd as high as
   ``initrd_addr_max`` and the RAM allow, and the command line below 640 KiB;
3. enters the kernel at ``code32_start`` in flat protected mode with paging off and
   interrupts disabled: CS = __BOOT_CS (0x10), DS = ES = SS = __BOOT_DS (0x18), both
   4 GiB flat segments of a GDT the loader provides, ESI = &boot_params, and EBP, EDI,
   EBX = 0.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

SETUP_HEADER = 0x1F1
HEADER_MAGIC = b"HdrS"
MIN_PROTOCOL = 0x0206
"""2.06 brought ``cmdline_size`` and an initrd that may reach ``initrd_addr_max``."""
LOADER_UNDEFINED = 0xFF
"""``type_of_loader`` for a boot loader without an assigned ID (boot.rst)."""
LOADED_HIGH = 0x01
"""``loadflags`` bit 0: the protected-mode code is loaded at 0x100000 (a bzImage)."""

# boot_params offsets (arch/x86/include/uapi/asm/bootparam.h)
ALT_MEM_K = 0x1E0
E820_ENTRIES = 0x1E8
E820_TABLE = 0x2D0
E820_MAX = 128
SETUP_SECTS = 0x1F1
BOOT_FLAG = 0x1FE
HEADER_END_BYTE = 0x201  # the jump at 0x200 is "EB xx": the header ends at 0x202 + xx
VERSION = 0x206
TYPE_OF_LOADER = 0x210
LOADFLAGS = 0x211
CODE32_START = 0x214
RAMDISK_IMAGE = 0x218
RAMDISK_SIZE = 0x21C
CMD_LINE_PTR = 0x228
INITRD_ADDR_MAX = 0x22C
CMDLINE_SIZE = 0x238

# Where this loader puts its pieces (all in conventional memory, below the EBDA).
BOOT_PARAMS = 0x10000
COMMAND_LINE = 0x20000
GDT = 0x30000
BOOT_CS = 0x10
BOOT_DS = 0x18
FLAT_CODE = 0x00CF9A000000FFFF  # base 0, limit 4 GiB, present, DPL 0, execute/read, 32-bit
FLAT_DATA = 0x00CF92000000FFFF  # the same as read/write data

E820_RAM = 1
E820_RESERVED = 2
LOW_RAM_END = 0x9FC00
"""640 KiB minus the 1 KiB a PC BIOS keeps as its extended data area."""


class BootError(Exception):
    """The file is not a kernel this loader can boot; the message says why."""


class E820Entry(NamedTuple):
    base: int
    size: int
    kind: int


class Kernel(NamedTuple):
    """The parts of a bzImage a loader needs."""

    protocol: int
    setup: bytes       # the real-mode part, with the setup header
    protected: bytes   # the protected-mode kernel (loaded at code32_start)
    code32_start: int
    initrd_addr_max: int
    cmdline_size: int


def parse_bzimage(image: bytes) -> Kernel:
    """Split a bzImage and read its setup header; BootError if it is not one."""
    if len(image) < 0x1000:
        raise BootError(f"{len(image)} bytes: too short to be a bzImage")
    (flag,) = struct.unpack_from("<H", image, BOOT_FLAG)
    magic = image[0x202:0x206]
    if flag != 0xAA55 or magic != HEADER_MAGIC:
        raise BootError(f"no setup header (boot flag {flag:#06x}, magic {magic!r}): "
                        "not a bzImage, or a damaged one")
    (protocol,) = struct.unpack_from("<H", image, VERSION)
    if protocol < MIN_PROTOCOL:
        raise BootError(f"boot protocol {protocol:#06x} is older than 2.06")
    if not image[LOADFLAGS] & LOADED_HIGH:
        raise BootError("a zImage (loaded low): only bzImages are supported")
    setup_sects = image[SETUP_SECTS] or 4  # 0 means 4, for very old kernels
    split = (setup_sects + 1) * 512
    if split >= len(image):
        raise BootError(f"setup_sects {setup_sects} claims more than the {len(image)} "
                        "bytes of the file: truncated")
    code32_start, = struct.unpack_from("<I", image, CODE32_START)
    initrd_addr_max, = struct.unpack_from("<I", image, INITRD_ADDR_MAX)
    cmdline_size, = struct.unpack_from("<I", image, CMDLINE_SIZE)
    return Kernel(protocol, image[:split], image[split:], code32_start, initrd_addr_max,
                  cmdline_size)


def read_files(kernel: str, initrd: Optional[str]) -> Tuple[bytes, Optional[bytes]]:
    """The bytes of a kernel file and of an optional initrd file (OSError if missing)."""
    with open(kernel, "rb") as handle:
        image = handle.read()
    if not initrd:
        return image, None
    with open(initrd, "rb") as handle:
        return image, handle.read()


def e820_map(ram_bytes: int) -> List[E820Entry]:
    """The memory map a PC BIOS would report: conventional memory below the EBDA, the
    EBDA and the BIOS area reserved, and everything from 1 MiB usable."""
    return [
        E820Entry(0, LOW_RAM_END, E820_RAM),
        E820Entry(LOW_RAM_END, 0xA0000 - LOW_RAM_END, E820_RESERVED),
        E820Entry(0xF0000, 0x10000, E820_RESERVED),
        E820Entry(0x100000, ram_bytes - 0x100000, E820_RAM),
    ]


class Placement(NamedTuple):
    """Where the loader put everything (for the boot report)."""

    kernel: Tuple[int, int]
    initrd: Optional[Tuple[int, int]]
    boot_params: int
    command_line: int


def load(cpu: Cpu, ram_bytes: int, image: bytes, initrd: Optional[bytes],
         command_line: str) -> Placement:
    """Lay out the kernel, initrd, command line and boot_params in RAM and set the CPU
    to the protocol's 32-bit entry state."""
    kernel = parse_bzimage(image)
    line = command_line.encode() + b"\0"
    if len(line) > kernel.cmdline_size + 1:
        raise BootError(f"command line of {len(line) - 1} bytes; this kernel takes at most "
                        f"{kernel.cmdline_size}")
    kernel_end = kernel.code32_start + len(kernel.protected)
    if kernel_end > ram_bytes:
        raise BootError(f"the kernel ({len(kernel.protected)} bytes) does not fit in "
                        f"{ram_bytes >> 20} MiB of RAM")
    write = cpu.mem.write_bytes
    write(kernel.code32_start, kernel.protected)

    params = bytearray(4096)
    header_end = 0x202 + image[HEADER_END_BYTE]
    params[SETUP_HEADER:header_end] = image[SETUP_HEADER:header_end]
    params[TYPE_OF_LOADER] = LOADER_UNDEFINED
    struct.pack_into("<I", params, CMD_LINE_PTR, COMMAND_LINE)
    placed_initrd = None
    if initrd:
        top = min(ram_bytes, kernel.initrd_addr_max + 1)
        address = (top - len(initrd)) & ~0xFFF
        if address < kernel_end:
            raise BootError(f"the initrd ({len(initrd)} bytes) does not fit above the "
                            f"kernel in {ram_bytes >> 20} MiB of RAM")
        write(address, initrd)
        struct.pack_into("<II", params, RAMDISK_IMAGE, address, len(initrd))
        placed_initrd = (address, len(initrd))
    struct.pack_into("<I", params, ALT_MEM_K, (ram_bytes >> 10) - 1024)
    table = e820_map(ram_bytes)
    params[E820_ENTRIES] = len(table)
    for i, entry in enumerate(table):
        struct.pack_into("<QQI", params, E820_TABLE + 20 * i, *entry)
    write(BOOT_PARAMS, bytes(params))
    write(COMMAND_LINE, line)
    write(GDT, struct.pack("<4Q", 0, 0, FLAT_CODE, FLAT_DATA))
    enter_protected_mode(cpu, kernel.code32_start)
    return Placement((kernel.code32_start, len(kernel.protected)), placed_initrd,
                     BOOT_PARAMS, COMMAND_LINE)


def enter_protected_mode(cpu: Cpu, entry: int) -> None:
    """The entry state boot.rst asks for, as if the loader had run LGDT, set CR0.PE and
    jumped far to __BOOT_CS:entry with its data segments loaded."""
    from reference.operands import CS, DS, ES, SS
    from reference.system.descriptors import read_descriptor
    from reference.system.segmentation import DescriptorLoader, load_cache

    cpu.gdtr = (GDT, 4 * 8 - 1)
    cpu.segment_loader = DescriptorLoader()
    load_cache(cpu, CS, BOOT_CS, read_descriptor(cpu, BOOT_CS))
    for index in (DS, ES, SS):
        cpu.load_segment(index, BOOT_DS)
    cpu.seg_journal.clear()
    cpu.flags.value &= ~0x200  # IF = 0
    for name, value in (("esi", BOOT_PARAMS), ("ebp", 0), ("edi", 0), ("ebx", 0),
                        ("eip", entry)):
        cpu.set_reg(name, value)
