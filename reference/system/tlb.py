"""The translation lookaside buffer (SDM Vol. 3A, 4.10 "Caching Translation Information").

One entry per 4 KiB linear page (a 4 MiB page fills one entry per 4 KiB page used),
holding what the walk found: the physical page, the access rights combined over both
levels, whether the dirty bit is already set, the global bit, and where the entry that
holds the dirty bit lives. Like the hardware, the TLB is not kept coherent with the page
tables: software must flush it (MOV CR3 drops all but global entries, INVLPG one page,
a change of CR0.PG/WP or CR4.PSE/PGE everything).

Beside the entries, two fast maps per privilege class (index 0 supervisor, 1 user) say
where an access already known to be allowed goes: ``readable`` (reads and fetches: no
NX on a P6, so both need the same rights) and ``writable`` (writes through an entry
whose dirty bit is set). ``reference.system.paging`` fills them after its checks pass
and the memory path reads them first; any flush empties them.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple


class Translation(NamedTuple):
    physical_page: int   # physical address of the 4 KiB frame
    user: bool           # U/S = 1 at both levels: CPL 3 may access
    writable: bool       # R/W = 1 at both levels
    dirty: bool          # D already set in the final entry
    global_: bool        # G set in the final entry (kept over MOV CR3 with CR4.PGE)
    large: bool          # from a 4 MiB page
    entry_address: int   # physical address of the PTE (or 4 MiB PDE) holding D


class Tlb:
    """Linear page number -> Translation."""

    def __init__(self) -> None:
        self.entries: Dict[int, Translation] = {}
        self.readable: Tuple[Dict[int, int], Dict[int, int]] = ({}, {})
        self.writable: Tuple[Dict[int, int], Dict[int, int]] = ({}, {})

    def _forget_fast(self) -> None:
        for pages in self.readable + self.writable:
            pages.clear()

    def lookup(self, page: int) -> Optional[Translation]:
        return self.entries.get(page)

    def fill(self, page: int, translation: Translation) -> None:
        self.entries[page] = translation

    def flush(self, keep_global: bool) -> None:
        self._forget_fast()
        if keep_global:
            self.entries = {page: t for page, t in self.entries.items() if t.global_}
        else:
            self.entries = {}

    def invalidate(self, linear: int) -> None:
        """INVLPG: drop the page holding ``linear``; for a 4 MiB page, all of it."""
        page = linear >> 12
        self._forget_fast()
        self.entries.pop(page, None)
        region = linear >> 22
        for other in [p for p, t in self.entries.items() if t.large and p >> 10 == region]:
            del self.entries[other]
