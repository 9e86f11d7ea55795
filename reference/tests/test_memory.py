"""The two memory stores: what is mapped, little-endian order, page-crossing accesses,
and that an access to a hole changes nothing."""

from __future__ import annotations

import pytest

from reference import FlatMemory, SparseMemory, Unmapped


def test_sparse_pages_round_trip_little_endian() -> None:
    mem = SparseMemory()
    mem.map(0x1000, b"\x01\x02")
    assert mem.read_int(0x1000, 2) == 0x0201
    assert set(mem.pages()) == {0x1000} and len(mem.pages()[0x1000]) == 4096


def test_sparse_access_across_two_mapped_pages() -> None:
    mem = SparseMemory()
    mem.map(0x1000, bytes(8192))
    mem.write_int(0x1FFE, 4, 0x11223344)
    assert mem.pages()[0x1000][-2:] == b"\x44\x33" and mem.pages()[0x2000][:2] == b"\x22\x11"
    assert mem.read_int(0x1FFE, 4) == 0x11223344


def test_sparse_write_into_a_hole_changes_nothing() -> None:
    mem = SparseMemory()
    mem.map(0x1000, bytes(4096))
    with pytest.raises(Unmapped) as info:
        mem.write_int(0x1FFE, 4, 0xFFFFFFFF)
    assert info.value.address == 0x2000 and info.value.access == "write"
    assert mem.pages()[0x1000] == bytes(4096)


def test_sparse_map_rejects_unaligned_base() -> None:
    with pytest.raises(ValueError, match="4 KiB-aligned"):
        SparseMemory().map(0x1001, b"")


def test_flat_memory_bounds() -> None:
    mem = FlatMemory(8192)
    mem.write_int(8188, 4, 0xAABBCCDD)
    assert mem.read_bytes(8188, 4) == bytes.fromhex("ddccbbaa")
    with pytest.raises(Unmapped):
        mem.read_int(8190, 4)
    assert len(mem.pages()) == 2
