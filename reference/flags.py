"""EFLAGS: bit names and the arithmetic that sets the status flags.

Semantics never compute a flag bit by hand: they call ``cpu.flags.after_add(...)`` and
friends, which follow the SDM's definitions (Vol. 1, 3.4.3 "EFLAGS Register"). Keeping
it here means a later lazy-flags version (remember the last operation, compute bits on
demand) changes this file only. The flags are computed eagerly; the block compiler
(``reference.blocks.optimize``) drops the updates a block overwrites before reading, and
inlines the rest, so these methods are also the source of the compiled flag code.
"""

from __future__ import annotations

# Bit masks, SDM Vol. 1, Figure 3-8.
CF = 1 << 0
PF = 1 << 2
AF = 1 << 4
ZF = 1 << 6
SF = 1 << 7
TF = 1 << 8
IF = 1 << 9
DF = 1 << 10
OF = 1 << 11
IOPL = 3 << 12
NT = 1 << 14
RF = 1 << 16
VM = 1 << 17
AC = 1 << 18
VIF = 1 << 19
VIP = 1 << 20
ID = 1 << 21

STATUS = CF | PF | AF | ZF | SF | OF  # "OSZAPC"
RESERVED_ONE = 1 << 1  # bit 1 always reads 1
# Bits software can change at all (P6 with CPUID): the rest read as 0.
IMPLEMENTED = STATUS | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID

NAMES = {"CF": CF, "PF": PF, "AF": AF, "ZF": ZF, "SF": SF, "TF": TF, "IF": IF, "DF": DF,
         "OF": OF}

# PF is set when the low byte of the result has an even number of 1 bits.
_PARITY = tuple(PF if bin(i).count("1") % 2 == 0 else 0 for i in range(256))


def flag_mask(names: str) -> int:
    """``"OF SF ZF"`` -> the EFLAGS bits; used by the opcode table."""
    mask = 0
    for name in names.split():
        if name not in NAMES:
            raise ValueError(f"unknown flag {name!r}; expected one of {sorted(NAMES)}")
        mask |= NAMES[name]
    return mask


def _flag_property(bit: int) -> property:
    def get(self: Flags) -> int:
        return 1 if self.value & bit else 0

    def put(self: Flags, on: int) -> None:
        self.value = (self.value | bit) if on else (self.value & ~bit)

    return property(get, put, doc=f"EFLAGS bit {bit:#x} as 0 or 1")


class Flags:
    """The EFLAGS register with SDM-named accessors (``flags.cf = 1``, ``if flags.zf:``)."""

    __slots__ = ("value",)

    cf = _flag_property(CF)
    pf = _flag_property(PF)
    af = _flag_property(AF)
    zf = _flag_property(ZF)
    sf = _flag_property(SF)
    tf = _flag_property(TF)
    if_ = _flag_property(IF)
    df = _flag_property(DF)
    of = _flag_property(OF)

    def __init__(self, value: int = RESERVED_ONE) -> None:
        self.value = (value & IMPLEMENTED) | RESERVED_ONE

    # -- setting the status flags from a result ------------------------------------
    def _szp(self, result: int, size: int) -> int:
        """SF, ZF and PF bits of a ``size``-bit result (already masked)."""
        bits = _PARITY[result & 0xFF]
        if result == 0:
            bits |= ZF
        if result >> (size - 1):
            bits |= SF
        return bits

    def set_szp(self, result: int, size: int) -> None:
        """SF, ZF, PF from ``result``; the other flags are left alone."""
        bits = self._szp(result & ((1 << size) - 1), size)
        self.value = (self.value & ~(SF | ZF | PF)) | bits

    def set_status(self, bits: int, mask: int = STATUS) -> None:
        """Replace the flags in ``mask`` with ``bits`` (both EFLAGS masks)."""
        self.value = (self.value & ~mask) | (bits & mask)

    def _arith(self, a: int, b: int, total: int, size: int, carry: bool, overflow: int,
               keep_cf: bool) -> None:
        """Shared tail of after_add/after_sub: SF ZF PF from the result, AF from bit 4 of
        a ^ b ^ total (the carry or borrow out of the low nibble), CF and OF as given."""
        result = total & ((1 << size) - 1)
        bits = self._szp(result, size)
        if carry:
            bits |= CF
        if (a ^ b ^ total) & 0x10:
            bits |= AF
        if overflow & (1 << (size - 1)):
            bits |= OF
        changed = STATUS & ~CF if keep_cf else STATUS
        self.value = (self.value & ~changed) | (bits & changed)

    def after_add(self, a: int, b: int, total: int, size: int, keep_cf: bool = False) -> None:
        """Flags of ``a + b (+ carry) = total`` (total unmasked), SDM ADD/ADC/INC. OF: the
        inputs share a sign that the result does not have."""
        result = total & ((1 << size) - 1)
        self._arith(a, b, total, size, total >> size != 0, ~(a ^ b) & (a ^ result), keep_cf)

    def after_sub(self, a: int, b: int, total: int, size: int, keep_cf: bool = False) -> None:
        """Flags of ``a - b (- borrow) = total`` (total unmasked, may be negative). OF: the
        inputs differ in sign and the result's sign differs from ``a``'s."""
        result = total & ((1 << size) - 1)
        self._arith(a, b, total, size, total < 0, (a ^ b) & (a ^ result), keep_cf)

    def after_logic(self, result: int, size: int) -> None:
        """AND/OR/XOR/TEST: OF = CF = 0, SF ZF PF from the result, AF undefined (0 here)."""
        bits = self._szp(result & ((1 << size) - 1), size)
        self.value = (self.value & ~STATUS) | bits

    # -- conditions -----------------------------------------------------------------
    def condition(self, cc: int) -> bool:
        """The condition ``cc`` (low nibble of Jcc/SETcc/CMOVcc), SDM Vol. 1, Table B-1."""
        v = self.value
        test = cc >> 1
        if test == 0:
            hit = v & OF
        elif test == 1:
            hit = v & CF
        elif test == 2:
            hit = v & ZF
        elif test == 3:
            hit = v & (CF | ZF)
        elif test == 4:
            hit = v & SF
        elif test == 5:
            hit = v & PF
        elif test == 6:
            hit = bool(v & SF) != bool(v & OF)
        else:
            hit = (v & ZF) or (bool(v & SF) != bool(v & OF))
        return bool(hit) != bool(cc & 1)
