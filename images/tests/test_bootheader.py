"""bzImage validation against the x86 boot protocol's setup header layout (boot.rst)."""

from __future__ import annotations

import struct

import pytest

from images.bootheader import boot_protocol, load_area
from images.errors import ImageError


def setup_sector(flag: int = 0xAA55, magic: bytes = b"HdrS", version: int = 0x020F) -> bytes:
    """A first 1 KiB laid out as boot.rst documents: flag at 0x1FE, magic at 0x202."""
    image = bytearray(1024)
    struct.pack_into("<H", image, 0x1FE, flag)
    image[0x202:0x206] = magic
    struct.pack_into("<H", image, 0x206, version)
    return bytes(image)


def test_accepts_a_valid_header_and_reports_its_protocol(tmp_path):
    path = tmp_path / "bzImage"
    path.write_bytes(setup_sector())
    assert boot_protocol(path) == 0x020F


@pytest.mark.parametrize(
    "corruption, message",
    [
        (dict(flag=0x0000), "boot flag"),
        (dict(magic=b"HdrX"), "HdrS"),
        (dict(version=0x0200), "older than 2.04"),
    ],
    ids=["boot-flag", "magic", "old-protocol"],
)
def test_rejects_a_corrupt_header_naming_the_field(tmp_path, corruption, message):
    path = tmp_path / "bzImage"
    path.write_bytes(setup_sector(**corruption))
    with pytest.raises(ImageError, match=message):
        boot_protocol(path)


def test_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "bzImage"
    path.write_bytes(setup_sector()[:0x100])
    with pytest.raises(ImageError, match="too short"):
        boot_protocol(path)


def test_rejects_a_real_kernel_with_one_flipped_byte(tmp_path):
    """The same check on a file the kernel build would produce, damaged at 0x203."""
    path = tmp_path / "bzImage"
    good = setup_sector() + bytes(range(256)) * 64
    path.write_bytes(good[:0x203] + b"\xff" + good[0x204:])
    with pytest.raises(ImageError, match="not a bzImage"):
        boot_protocol(path)


def test_the_load_area_comes_from_pref_address_and_init_size(tmp_path):
    image = bytearray(setup_sector())
    struct.pack_into("<Q", image, 0x258, 16 << 20)
    struct.pack_into("<I", image, 0x260, 0x48F000)
    path = tmp_path / "bzImage"
    path.write_bytes(bytes(image))
    assert load_area(path) == (16 << 20, 0x48F000)
    path.write_bytes(setup_sector(version=0x0209))  # before 2.10: no such fields
    with pytest.raises(ImageError, match="no load area"):
        load_area(path)
