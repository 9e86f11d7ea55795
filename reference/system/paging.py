"""32-bit paging (SDM Vol. 3A, 4.3 "32-Bit Paging"), with 4 MiB pages (CR4.PSE), global
pages (CR4.PGE), write protection for supervisor writes (CR0.WP), the accessed and dirty
bits, and #PF with CR2 and its error code (4.7).

While CR0.PG is set, ``set_paging`` installs the translating versions of the CPU's
access path (``read_linear``, ``write_linear``, ``read_system``, ``write_system``,
``fetch_byte``, ``code_physical``) on the instance; clearing PG removes them, so the
path without paging has no cost. Translations are cached in ``reference.system.tlb``.

A walk sets accessed bits (and the dirty bit on a write) only when the access is
allowed: a faulting access leaves the tables unchanged. Those bit updates are not part
of the instruction's rollback journal: the hardware does not undo them either.
"""

from __future__ import annotations

from types import MethodType
from typing import TYPE_CHECKING

from reference.faults import PF, Fault
from reference.system.control_registers import PSE, WP
from reference.system.tlb import Tlb, Translation

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

PRESENT, WRITABLE, USER, ACCESSED, DIRTY, PAGE_SIZE, GLOBAL = 1, 2, 4, 0x20, 0x40, 0x80, 0x100
# #PF error code bits (Figure 4-12).
ERR_PROTECTION, ERR_WRITE, ERR_USER, ERR_RESERVED = 1, 2, 4, 8
# A 4 MiB PDE's bits 21:13 are reserved without PSE-36 (Table 4-4, MAXPHYADDR 32).
LARGE_RESERVED = 0x003FE000
READ, WRITE, FETCH = "read", "write", "fetch"


def page_fault(cpu: Cpu, linear: int, code: int) -> Fault:
    """CR2 := the faulting linear address; the #PF to raise."""
    cpu.cr2 = linear & 0xFFFFFFFF
    return Fault(PF, code)


def walk(cpu: Cpu, linear: int, access: str, user: bool) -> Translation:
    """Translate ``linear`` for ``access`` at user (CPL 3) or supervisor level, from the
    tables, with every check and the A/D bit updates; fills the TLB."""
    mem = cpu.mem
    write = access == WRITE
    code = (ERR_WRITE if write else 0) | (ERR_USER if user else 0)
    pde_address = (cpu.cr3 & 0xFFFFF000) | ((linear >> 20) & 0xFFC)
    pde = mem.read_int(pde_address, 4)
    if not pde & PRESENT:
        raise page_fault(cpu, linear, code)
    large = bool(pde & PAGE_SIZE and cpu.cr4 & PSE)
    if large:
        if pde & LARGE_RESERVED:
            raise page_fault(cpu, linear, code | ERR_PROTECTION | ERR_RESERVED)
        rights = pde
        entry_address, entry = pde_address, pde
        frame = (pde & 0xFFC00000) | (linear & 0x003FF000)
    else:
        pte_address = (pde & 0xFFFFF000) | ((linear >> 10) & 0xFFC)
        pte = mem.read_int(pte_address, 4)
        if not pte & PRESENT:
            raise page_fault(cpu, linear, code)
        rights = pde & pte
        entry_address, entry = pte_address, pte
        frame = pte & 0xFFFFF000
    allowed_user = bool(rights & USER)
    allowed_write = bool(rights & WRITABLE)
    if not allowed(cpu, user, write, allowed_user, allowed_write):
        raise page_fault(cpu, linear, code | ERR_PROTECTION)
    _set_bits(mem, pde_address, pde, ACCESSED)
    if not large:
        _set_bits(mem, entry_address, entry, ACCESSED | (DIRTY if write else 0))
    elif write:
        _set_bits(mem, pde_address, pde | ACCESSED, DIRTY)
    dirty = write or bool(entry & DIRTY)
    translation = Translation(frame, allowed_user, allowed_write, dirty,
                              bool(entry & GLOBAL), large, entry_address)
    cpu.tlb.fill(linear >> 12, translation)
    return translation


def _set_bits(mem: object, address: int, entry: int, bits: int) -> None:
    if entry & bits != bits:
        mem.write_int(address, 4, entry | bits)  # type: ignore[attr-defined]


def allowed(cpu: Cpu, user: bool, write: bool, user_ok: bool, write_ok: bool) -> bool:
    """The access rights of 4.6: user accesses need U/S = 1, user writes R/W = 1;
    supervisor writes need R/W = 1 only when CR0.WP is set."""
    if user:
        return user_ok and (write_ok or not write)
    return write_ok or not write or not cpu.cr0 & WP


def translate(cpu: Cpu, linear: int, access: str, user: bool) -> int:
    """The physical address of ``linear``: from the TLB when it allows the access (a
    write through a clean entry walks again to set D), else by a walk."""
    linear &= 0xFFFFFFFF
    entry = cpu.tlb.lookup(linear >> 12)
    write = access == WRITE
    if (entry is None or (write and not entry.dirty)
            or not allowed(cpu, user, write, entry.user, entry.writable)):
        entry = walk(cpu, linear, access, user)
    # Allowed now, and (for a write) dirty: later accesses of this kind may go straight.
    fast = cpu.tlb.writable if write else cpu.tlb.readable
    fast[user][linear >> 12] = entry.physical_page
    return entry.physical_page | (linear & 0xFFF)


def _user(cpu: Cpu) -> bool:
    return cpu.cpl == 3


def _split(linear: int, nbytes: int) -> int:
    """How many of ``nbytes`` at ``linear`` lie in its page."""
    return min(nbytes, 0x1000 - (linear & 0xFFF))


def _read(cpu: Cpu, linear: int, nbytes: int, user: bool) -> int:
    linear &= 0xFFFFFFFF
    first = _split(linear, nbytes)
    low = translate(cpu, linear, READ, user)
    if first == nbytes:
        return cpu.mem.read_int(low, nbytes)
    high = translate(cpu, linear + first, READ, user)
    return (cpu.mem.read_int(low, first)
            | cpu.mem.read_int(high, nbytes - first) << (8 * first))


def _write(cpu: Cpu, linear: int, nbytes: int, value: int, user: bool) -> None:
    """Both pages of a straddling write are translated before either is written, so a
    #PF on the second leaves the first untouched."""
    linear &= 0xFFFFFFFF
    first = _split(linear, nbytes)
    low = translate(cpu, linear, WRITE, user)
    if first == nbytes:
        cpu.write_physical(low, nbytes, value)
        return
    high = translate(cpu, linear + first, WRITE, user)
    cpu.write_physical(low, first, value & ((1 << (8 * first)) - 1))
    cpu.write_physical(high, nbytes - first, value >> (8 * first))


def read_linear(cpu: Cpu, linear: int, nbytes: int) -> int:
    """The fast path first: a page this privilege class already read, access within it."""
    linear &= 0xFFFFFFFF
    offset = linear & 0xFFF
    user = cpu.cpl == 3
    if offset + nbytes <= 0x1000:
        frame = cpu.tlb.readable[user].get(linear >> 12)
        if frame is not None:
            return cpu.mem.read_int(frame | offset, nbytes)
    return _read(cpu, linear, nbytes, user)


def write_linear(cpu: Cpu, linear: int, nbytes: int, value: int) -> None:
    """The fast path first: a page this privilege class already wrote (dirty)."""
    linear &= 0xFFFFFFFF
    offset = linear & 0xFFF
    user = cpu.cpl == 3
    if offset + nbytes <= 0x1000:
        frame = cpu.tlb.writable[user].get(linear >> 12)
        if frame is not None:
            cpu.write_physical(frame | offset, nbytes, value)
            return
    _write(cpu, linear, nbytes, value, user)


def read_system(cpu: Cpu, linear: int, nbytes: int) -> int:
    return _read(cpu, linear, nbytes, False)


def write_system(cpu: Cpu, linear: int, nbytes: int, value: int) -> None:
    _write(cpu, linear, nbytes, value, False)


def fetch_byte(cpu: Cpu, linear: int) -> int:
    return cpu.mem.read_int(translate(cpu, linear, FETCH, _user(cpu)), 1, "fetch")


def code_physical(cpu: Cpu, linear: int) -> int:
    return translate(cpu, linear, FETCH, _user(cpu))


PAGED_ACCESS = (read_linear, write_linear, read_system, write_system, fetch_byte,
                code_physical)


def set_paging(cpu: Cpu, on: bool) -> None:
    """Install (PG = 1) or remove (PG = 0) the translating access path; either way
    every cached translation and decoded instruction is forgotten."""
    for function in PAGED_ACCESS:
        name = function.__name__
        if on:
            setattr(cpu, name, MethodType(function, cpu))
        elif name in cpu.__dict__:
            delattr(cpu, name)
    cpu.tlb = Tlb() if on else None
    cpu.forget_all_code()
