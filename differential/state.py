"""Initial machine states: register values drawn toward the edges, flags, page contents.

Register values follow what hardware-recorded suites found productive (SingleStepTests):
most draws sit near the extremes (small numbers, values just below a power of two, the
sign boundaries), some are "interesting" constants, the rest uniform. Pages are sometimes
all 00 or all FF, since those make carry chains and sign bits behave at their limits.
"""

from __future__ import annotations

import hashlib
from typing import Dict, Iterable, List

from differential.draw import Draw
from ground.case import GPRS, PAGE_SIZE, SEGMENTS

CF, PF, AF, ZF, SF, DF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x400, 0x800
IF = 0x200
RESERVED_ONE = 0x2  # EFLAGS bit 1 always reads as 1
ARITHMETIC_FLAGS = (CF, PF, AF, ZF, SF, OF)
_DRAWN_FLAGS = ARITHMETIC_FLAGS + (DF,)  # the flags a case's EFLAGS draws, in this order

INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF, 0x55555555,
               0xAAAAAAAA, 0x0000FFFF, 0xFFFF0000, 0x00FF00FF, 0x12345678)


def value32(draw: Draw) -> int:
    """A 32-bit value leaning to the edges (edges of the byte, word and dword views)."""
    kind = draw.integer(0, 5)
    if kind == 0:
        return draw.choice(INTERESTING)
    if kind == 1:
        return draw.integer(0, 0x100)  # small positive
    if kind == 2:
        return 0x100000000 - draw.integer(1, 0x100)  # small negative
    if kind == 3:  # a power of two, or one below or above it: 0 to 2**31 + 1, no wrap
        return (1 << draw.integer(0, 31)) + draw.integer(-1, 1)
    if kind == 4:  # the upper bits of one value with the low byte/word of another
        return (draw.integer(0, 0xFFFF) << 16) | draw.choice((0, 0x7F, 0x80, 0xFF, 0xFFFF))
    return draw.integer(0, 0xFFFFFFFF)


def eflags(draw: Draw) -> int:
    """Arithmetic flags and DF drawn; IF set (as in user code), TF clear (no single-step
    trap: the case is one instruction), reserved bit 1 set, everything else clear."""
    flags = RESERVED_ONE | IF
    for bit in _DRAWN_FLAGS:
        if draw.chance(50):
            flags |= bit
    return flags


def registers(draw: Draw, mode: str) -> Dict[str, int]:
    """General registers, EFLAGS and (real16) segment selectors; EIP and ESP are placed
    by the layout, which knows where the code and stack pages are."""
    regs = {}
    for name in GPRS:  # a loop, not a comprehension: no function object and frame a case
        regs[name] = value32(draw)
    regs["eflags"] = eflags(draw)
    if mode == "real16":
        for name in SEGMENTS:
            regs[name] = draw.integer(0, 0xFFFF)
    return regs


_ZEROS = bytes(PAGE_SIZE)
_ONES = b"\xff" * PAGE_SIZE
POOL_WINDOWS = 1 << 20
_POOL = hashlib.shake_128(b"x86lab page pool").digest(POOL_WINDOWS + PAGE_SIZE)
"""Random bytes every random page is a window of: a slice costs ~0.2 µs where expanding
a seed with SHAKE-128 cost ~7.5 µs a page (~19 µs of a campaign case's ~65 µs of
drawing, issue 18). An instruction reads a few bytes of a page, and those bytes are
uniform either way; 2**20 windows instead of 2**32 seeds is the only difference."""


def page_bytes(draw: Draw) -> bytes:
    """One page's contents: all 00, all FF, or the window of the random pool a drawn seed
    picks (Hypothesis then shrinks a seed, not 4096 separate choices). The all-00 and
    all-FF pages are shared (bytes are immutable): no allocation for a quarter of the
    pages."""
    kind = draw.integer(0, 7)
    if kind == 0:
        return _ZEROS
    if kind == 1:
        return _ONES
    start = draw.integer(0, 0xFFFFFFFF) % POOL_WINDOWS
    return _POOL[start:start + PAGE_SIZE]


_PAGE_BASE = 0xFFFFFFFF & ~(PAGE_SIZE - 1)  # wrap at 4 GiB and drop the page offset at once


def pages_covering(addresses: Iterable[int]) -> List[int]:
    """Page bases covering each linear address (wrapping at 4 GiB). One constant mask
    per address: working the two masks out again for each of a case's ~10 addresses
    cost ~0.3 µs of its ~38 µs of drawing (issue 18)."""
    return sorted({address & _PAGE_BASE for address in addresses})
