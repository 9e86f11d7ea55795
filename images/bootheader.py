"""Checks that a file is an x86 Linux bzImage before anyone tries to boot it.

A truncated download or a build that wrote something else would otherwise show up only as
a silent hang in an emulator. The x86 boot protocol (the kernel's
Documentation/arch/x86/boot.rst) puts the real-mode setup header in the first sector: the
boot flag 0xAA55 at offset 0x1FE and the magic "HdrS" at 0x202, followed by the
protocol version at 0x206.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Tuple

from images.errors import ImageError

BOOT_FLAG_OFFSET = 0x1FE
BOOT_FLAG = 0xAA55
HEADER_MAGIC_OFFSET = 0x202
HEADER_MAGIC = b"HdrS"
VERSION_OFFSET = 0x206
MIN_PROTOCOL = 0x0204
"""2.04 is the first protocol with a 32-bit syssize; every kernel we build is far newer."""
PREF_ADDRESS_OFFSET, INIT_SIZE_OFFSET = 0x258, 0x260
LOAD_AREA_PROTOCOL = 0x020A
"""2.10 added ``pref_address`` (where the kernel wants to run) and ``init_size`` (how much
memory it needs there, from that address)."""


def boot_protocol(path: Path) -> int:
    """The boot protocol version (e.g. 0x020F) of a valid bzImage; ImageError otherwise."""
    with open(path, "rb") as handle:
        head = handle.read(VERSION_OFFSET + 2)
    if len(head) < VERSION_OFFSET + 2:
        raise ImageError(f"{path}: only {len(head)} bytes, too short to be a bzImage; rebuild it")
    (flag,) = struct.unpack_from("<H", head, BOOT_FLAG_OFFSET)
    if flag != BOOT_FLAG:
        raise ImageError(
            f"{path}: boot flag at 0x1FE is {flag:#06x}, not 0xAA55: not a bzImage "
            "(corrupt or truncated); rebuild with --rebuild"
        )
    magic = head[HEADER_MAGIC_OFFSET : HEADER_MAGIC_OFFSET + 4]
    if magic != HEADER_MAGIC:
        raise ImageError(
            f"{path}: setup header magic at 0x202 is {magic!r}, not b'HdrS': not a bzImage "
            "(corrupt or truncated); rebuild with --rebuild"
        )
    (version,) = struct.unpack_from("<H", head, VERSION_OFFSET)
    if version < MIN_PROTOCOL:
        raise ImageError(f"{path}: boot protocol {version:#06x} is older than 2.04")
    return version


def load_area(path: Path) -> Tuple[int, int]:
    """(``pref_address``, ``init_size``) of a valid bzImage: the physical range a kernel
    that is not relocated runs in (tools that look inside a saved guest's memory use it);
    ImageError if the header is invalid or older than protocol 2.10."""
    version = boot_protocol(path)
    if version < LOAD_AREA_PROTOCOL:
        raise ImageError(f"{path}: boot protocol {version:#06x} names no load area (2.10+)")
    with open(path, "rb") as handle:
        head = handle.read(INIT_SIZE_OFFSET + 4)
    (address,) = struct.unpack_from("<Q", head, PREF_ADDRESS_OFFSET)
    (size,) = struct.unpack_from("<I", head, INIT_SIZE_OFFSET)
    return address, size
