"""The translation lookaside buffer (SDM Vol. 3A, 4.10 "Caching Translation Information").

One entry per 4 KiB linear page (a 4 MiB page fills one entry per 4 KiB page used),
holding what the walk found: the physical page, the access rights combined over both
levels, whether the dirty bit is already set, the global bit, and where the entry that
holds the dirty bit lives. Like the hardware, the TLB is not kept coherent with the page
tables: software must flush it (MOV CR3 drops all but global entries, INVLPG one page,
a change of CR0.PG/WP or CR4.PSE/PGE everything).
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional


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

    def lookup(self, page: int) -> Optional[Translation]:
        return self.entries.get(page)

    def fill(self, page: int, translation: Translation) -> None:
        self.entries[page] = translation

    def flush(self, keep_global: bool) -> None:
        if keep_global:
            self.entries = {page: t for page, t in self.entries.items() if t.global_}
        else:
            self.entries = {}

    def invalidate(self, linear: int) -> None:
        """INVLPG: drop the page holding ``linear``; for a 4 MiB page, all of it."""
        page = linear >> 12
        self.entries.pop(page, None)
        region = linear >> 22
        for other in [p for p, t in self.entries.items() if t.large and p >> 10 == region]:
            del self.entries[other]
