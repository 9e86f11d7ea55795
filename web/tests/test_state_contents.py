"""The saved state's breakdown (``web.build.state_contents``) on states made here, in v86's
format as its docstring describes it, with pages placed where each rule must find them;
and, when the session's site is built, on the real state: the parts add up to the file."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Dict

import pytest

from web.build.state_contents import (
    ALLOCATED,
    DEVICES,
    FIRMWARE,
    KERNEL,
    PACKED_MEMORY,
    PAGE,
    PAGE_BITMAP,
    STATE_MAGIC,
    kernel_pages,
    parse_state,
    split,
    state_contents,
)

KERNEL_AT, KERNEL_SIZE = 16 << 20, 3 << 20


def make_state(memory: Dict[int, bytes], pages: int = 8192) -> bytes:
    """A v86 state with ``memory`` (page number -> 4 KiB) as its RAM, and a device buffer."""
    bitmap = bytearray(pages // 8)
    packed = b""
    for number in sorted(memory):
        bitmap[number // 8] |= 1 << number % 8
        packed += memory[number]
    buffers = [b"\x01device", bytes(packed), bytes(bitmap)]
    infos, offset = [], 0
    for buffer in buffers:
        infos.append({"offset": offset, "length": len(buffer)})
        offset += (len(buffer) + 3) & ~3
    state = [0] * 80
    state[0] = {"buffer_id": 0}
    state[PACKED_MEMORY], state[PAGE_BITMAP] = {"buffer_id": 1}, {"buffer_id": 2}
    document = json.dumps({"buffer_infos": infos, "state": state}).encode()
    body = b"".join(buffer.ljust((len(buffer) + 3) & ~3, b"\0") for buffer in buffers)
    head_length = (16 + len(document) + 3) & ~3
    total = head_length + len(body)
    head = struct.pack("<IiiI", STATE_MAGIC, 6, total, len(document)) + document
    return head.ljust(head_length, b"\0") + body


KERNEL_PAGES = range(KERNEL_AT // PAGE, (KERNEL_AT + KERNEL_SIZE) // PAGE)


def filled(byte: int) -> bytes:
    return bytes([byte]) * (PAGE - 1) + b"\x01"


def test_each_page_goes_to_its_part() -> None:
    busybox = filled(7) + filled(8) + b"tail of the file"  # its last page is partial
    bios = filled(9)
    kernel_page = (KERNEL_AT // PAGE) + 5
    memory = {
        0x80: filled(1),                       # low RAM: the kernel's allocations
        0xC0: filled(2),                       # the ROM hole, whatever it holds
        0xF0: bios,                            # the BIOS as loaded
        0x300: busybox[PAGE:2 * PAGE],         # BusyBox's second page, in the page cache
        0x301: busybox[2 * PAGE:].ljust(PAGE, b"\0"),
        kernel_page: filled(3),                # the kernel image
        kernel_page + 1: busybox[:PAGE],       # the page cache may sit in the load area
        0x1F00: filled(4),                     # high RAM: allocations again
    }
    state = parse_state(make_state(memory))
    assert [number for number, _ in state.pages()] == sorted(memory)
    parts = {part.name: part for part in split(
        state, KERNEL_PAGES, {"bin/busybox": busybox}, {"bios": bios})}
    assert {name: part.pages for name, part in parts.items()} == {
        ALLOCATED: 2, FIRMWARE: 2, "initramfs file /bin/busybox": 3, KERNEL: 1, DEVICES: 0}
    assert parts[KERNEL].chunks == [filled(3)]
    assert parts[FIRMWARE].chunks == [filled(2), bios]
    assert parts[DEVICES].raw_bytes > 0


def test_kernel_pages_round_the_load_area_out_to_whole_pages(tmp_path: Path) -> None:
    header = bytearray(1024)
    struct.pack_into("<H", header, 0x1FE, 0xAA55)
    header[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", header, 0x206, 0x020F)
    struct.pack_into("<Q", header, 0x258, KERNEL_AT)
    struct.pack_into("<I", header, 0x260, KERNEL_SIZE + 1)  # one byte into another page
    (tmp_path / "bzImage").write_bytes(bytes(header))
    pages = kernel_pages(tmp_path / "bzImage")
    assert pages.start == KERNEL_AT // PAGE and len(pages) == KERNEL_SIZE // PAGE + 1


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd missing")
def test_a_zstd_state_is_read_and_anything_else_refused() -> None:
    raw = make_state({0x100: filled(5)})
    packed = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True,
                            check=True).stdout
    assert [n for n, _ in parse_state(packed).pages()] == [0x100]
    with pytest.raises(ValueError, match="not a v86 state"):
        parse_state(b"\x00" * 64)
    with pytest.raises(ValueError, match="too short"):
        parse_state(b"abc")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd missing")
def test_the_real_state_splits_into_parts_that_cover_it(built_site: Path) -> None:
    contents = state_contents(built_site)
    parts = {row["part"]: row for row in contents["parts"]}
    assert parts["initramfs file /bin/busybox"]["pages"] > 100  # the rootfs keeps it all
    assert parts[KERNEL]["pages"] > 200
    memory_bytes = sum(row["bytes"] for row in contents["parts"] if row["part"] != DEVICES)
    assert memory_bytes + parts[DEVICES]["bytes"] == contents["state"]["raw_bytes"]
    assert all(row["bytes"] == row["pages"] * PAGE for row in contents["parts"]
               if row["part"] != DEVICES)
    # Compressed apart, the parts cannot come out much smaller than the whole file.
    assert contents["zstd_bytes_sum"] > 0.97 * contents["state"]["bytes"]
