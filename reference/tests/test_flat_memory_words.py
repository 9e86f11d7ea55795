"""``FlatMemory``'s dword path: accesses of 1-4 bytes read or merge a whole dword and
mask it, so the bytes around the access must come out untouched, the value must be the
little-endian one, and the last bytes of RAM (no whole dword left) must still work."""

from __future__ import annotations

import pytest

from reference.faults import Unmapped
from reference.memory import FlatMemory


def _ram() -> FlatMemory:
    memory = FlatMemory(64)
    memory.ram[:] = bytes(range(0x40, 0x80))  # byte at address a is 0x40 + a
    return memory


@pytest.mark.parametrize("count", [1, 2, 3, 4])
@pytest.mark.parametrize("address", [0, 5, 60, 64 - 3, 63])
def test_read_int_is_little_endian_and_masked(address: int, count: int) -> None:
    memory = _ram()
    if address + count > 64:
        with pytest.raises(Unmapped):
            memory.read_int(address, count)
        return
    expected = sum((0x40 + address + i) << (8 * i) for i in range(count))
    assert memory.read_int(address, count) == expected


@pytest.mark.parametrize("count", [1, 2, 3, 4])
@pytest.mark.parametrize("address", [0, 9, 60, 62])
def test_exchange_stores_only_its_bytes_and_returns_the_old_ones(address: int,
                                                                 count: int) -> None:
    memory = _ram()
    before = bytes(memory.ram)
    if address + count > 64:
        with pytest.raises(Unmapped):
            memory.exchange(address, count, 0)
        assert bytes(memory.ram) == before
        return
    value = 0xA1B2C3D4 & ((1 << (8 * count)) - 1)
    old = memory.exchange(address, count, value)
    assert bytes(old) == before[address:address + count]
    after = bytearray(before)
    after[address:address + count] = value.to_bytes(count, "little")
    assert bytes(memory.ram) == bytes(after)
