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


@pytest.mark.parametrize("store", ["write_bytes", "exchange", "across"])
def test_sparse_page_mapped_from_bytes_is_copied_at_its_first_store(store: str) -> None:
    """A whole page mapped from ``bytes`` is shared, not copied, until a store: the store
    then lands in this memory's own copy (read back here, and by ``final``), never in
    the bytes object the caller mapped, nor at another base mapped from the same object."""
    page = bytes(range(256)) * 16
    mem = SparseMemory()
    for base in (0x1000, 0x2000, 0x5000):
        mem.map(base, page)
    if store == "write_bytes":
        mem.write_bytes(0x1010, b"\xaa\xbb")
    elif store == "exchange":
        assert mem.exchange(0x1010, 2, 0xBBAA) == page[0x10:0x12]
    else:  # a store across the pages at 0x1000 and 0x2000
        mem.write_bytes(0x1FFF, b"\xcc\xdd")
    assert page == bytes(range(256)) * 16  # the caller's object is untouched
    final = mem.final({0x1000: page, 0x2000: page, 0x5000: page})
    assert final[0x5000] is page  # never stored into: the very object mapped
    if store == "across":
        assert mem.read_int(0x1FFF, 2) == 0xDDCC
        assert final[0x1000][-1] == 0xCC and final[0x2000][0] == 0xDD
    else:
        assert mem.read_int(0x1010, 2) == 0xBBAA and final[0x1000][0x10:0x12] == b"\xaa\xbb"
        assert final[0x2000] is page


def test_sparse_page_mapped_from_a_bytearray_is_copied_at_once() -> None:
    source = bytearray(4096)
    mem = SparseMemory()
    mem.map(0x1000, source)
    source[0] = 0xFF  # the caller's later edit is not the memory's
    assert mem.read_int(0x1000, 1) == 0


def test_sparse_map_rejects_unaligned_base() -> None:
    with pytest.raises(ValueError, match="4 KiB-aligned"):
        SparseMemory().map(0x1001, b"")


def test_sparse_load_replaces_every_page_as_map_would() -> None:
    """``load`` unmaps what was there, then maps each page as ``map`` does: a whole
    ``bytes`` page shared until a store, anything else copied (a bytearray, a short
    page padded with zeros), an unaligned base refused."""
    mem = SparseMemory()
    mem.map(0x5000, bytes(4096))
    mem.write_int(0x5000, 4, 0xDEADBEEF)
    page, short, mutable = bytes(range(256)) * 16, b"\x01\x02", bytearray(4096)
    mem.load({0x1000: page, 0x2000: short, 0x3000: mutable})
    assert not mem.is_mapped(0x5000)
    with pytest.raises(Unmapped):
        mem.read_int(0x5000, 4)
    pages = mem.pages()
    assert pages == {0x1000: page, 0x2000: short.ljust(4096, b"\0"), 0x3000: bytes(4096)}
    assert mem.final({0x1000: page})[0x1000] is page  # shared, not copied
    mutable[0] = 0xFF  # the caller's bytearray is not the memory's page
    mem.write_int(0x1000, 2, 0xABCD)
    assert mem.read_int(0x3000, 1) == 0 and page[:2] == bytes([0, 1])
    assert mem.read_int(0x1000, 2) == 0xABCD
    with pytest.raises(ValueError):
        mem.load({0x1800: page})


def test_flat_memory_bounds() -> None:
    mem = FlatMemory(8192)
    mem.write_int(8188, 4, 0xAABBCCDD)
    assert mem.read_bytes(8188, 4) == bytes.fromhex("ddccbbaa")
    with pytest.raises(Unmapped):
        mem.read_int(8190, 4)
    assert len(mem.pages()) == 2


@pytest.mark.parametrize("kind", ["sparse", "flat"])
def test_a_code_window_stops_at_its_page_and_at_what_is_not_ram(kind: str) -> None:
    """``code_window``: the bytes a fetch would read one by one from an address, at most
    an instruction's 15, never past the end of the address's page (the next linear
    page may map anywhere) and none where there is no RAM."""
    code = bytes(range(1, 33))
    if kind == "sparse":
        mem = SparseMemory()
        mem.map(0x1000, bytes(4096 - 8) + code[:8])
        outside = 0x3000
    else:
        mem = FlatMemory(0x2000)
        mem.write_bytes(0x1FF8, code[:8])
        outside = 0x2000
    assert bytes(mem.code_window(0x1FF8)) == code[:8]   # to the end of the page
    assert bytes(mem.code_window(0x1FF0)) == bytes(8) + code[:7]   # 15 bytes at most
    assert bytes(mem.code_window(outside)) == b""
