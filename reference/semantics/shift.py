"""Shift and rotate family: SAL/SHL SHR SAR ROL ROR RCL RCR SHLD SHRD (SDM Vol. 2B).

Every form masks its count to 5 bits first (``COUNT & 1FH``); a masked count of 0 changes
neither the destination nor the flags (the destination is still read, as hardware does, so
an access to a missing page faults the same way). RCL/RCR rotate through CF, i.e. over a
SIZE+1-bit value, which is why their count is taken modulo 9 or 17 for 8- and 16-bit
operands. OF is defined for 1-bit counts only and AF for no shift; the table
(``reference.isa.table._shifts``) declares both undefined otherwise, and here they get
whatever the 1-bit formula gives (OF) or are left alone (AF).
"""

from __future__ import annotations

from reference.cpu import Cpu
from reference.operands import Operand
from reference.semantics import implements

COUNT_MASK = 0x1F  # IA-32 masks every shift/rotate count to 5 bits (SDM: "countMASK")


def _rotl(value: int, count: int, width: int) -> int:
    """``value`` (``width`` bits) rotated left by ``count`` (0 <= count <= width) places."""
    return ((value << count) | (value >> (width - count))) & ((1 << width) - 1)


def _set_shift_flags(cpu: Cpu, result: int, size: int, cf: int, of: int) -> None:
    """SF, ZF, PF from the result, CF the last bit shifted out, OF as the form defines."""
    flags = cpu.flags
    flags.set_szp(result, size)
    flags.cf = cf
    flags.of = of


@implements("SHL", "SAL")
def shl(cpu: Cpu, dst: Operand, count_src: Operand) -> None:
    """DEST := DEST * 2^COUNT; CF := last bit out of the top; OF := MSB(DEST) XOR CF.

    With COUNT > SIZE (8/16-bit operands) the SDM leaves CF undefined; shifting the wide
    Python int gives CF = 0 there, which is what Intel CPUs and Unicorn produce.
    """
    value = dst.read()
    count = count_src.read() & COUNT_MASK
    if count == 0:
        return
    result = (value << count) & dst.mask
    cf = ((value << (count - 1)) >> (dst.size - 1)) & 1
    dst.write(result)
    _set_shift_flags(cpu, result, dst.size, cf, (result >> (dst.size - 1)) ^ cf)


@implements("SHR")
def shr(cpu: Cpu, dst: Operand, count_src: Operand) -> None:
    """DEST := DEST / 2^COUNT (unsigned); CF := last bit out; OF := MSB(original DEST)."""
    value = dst.read()
    count = count_src.read() & COUNT_MASK
    if count == 0:
        return
    result = value >> count
    dst.write(result)
    _set_shift_flags(cpu, result, dst.size, (value >> (count - 1)) & 1, value >> (dst.size - 1))


@implements("SAR")
def sar(cpu: Cpu, dst: Operand, count_src: Operand) -> None:
    """DEST := DEST / 2^COUNT (signed, rounding toward -infinity); CF := last bit out;
    OF := 0. Python's ``>>`` on the signed value is exactly this arithmetic shift."""
    value = dst.sign(dst.read())
    count = count_src.read() & COUNT_MASK
    if count == 0:
        return
    result = (value >> count) & dst.mask
    dst.write(result)
    _set_shift_flags(cpu, result, dst.size, (value >> (count - 1)) & 1, 0)


@implements("ROL")
def rol(cpu: Cpu, dst: Operand, count_src: Operand) -> None:
    """DEST := DEST rotated left by (COUNT MOD SIZE); CF := LSB(DEST);
    OF := MSB(DEST) XOR CF. CF is set even when COUNT MOD SIZE is 0 (e.g. ROL r8, 8)."""
    value = dst.read()
    count = count_src.read() & COUNT_MASK
    if count == 0:
        return
    result = _rotl(value, count % dst.size, dst.size)
    dst.write(result)
    cf = result & 1
    cpu.flags.cf = cf
    cpu.flags.of = (result >> (dst.size - 1)) ^ cf


@implements("ROR")
def ror(cpu: Cpu, dst: Operand, count_src: Operand) -> None:
    """DEST := DEST rotated right by (COUNT MOD SIZE); CF := MSB(DEST);
    OF := MSB(DEST) XOR MSB-1(DEST)."""
    value = dst.read()
    count = count_src.read() & COUNT_MASK
    if count == 0:
        return
    size = dst.size
    result = _rotl(value, (size - count % size) % size, size)
    dst.write(result)
    _set_rotate_right_flags(cpu, result, size, result >> (size - 1))


def _set_rotate_right_flags(cpu: Cpu, result: int, size: int, cf: int) -> None:
    """After a right rotation OF is the XOR of the result's two top bits (for a 1-bit
    rotation that is the SDM's "MSB(DEST) XOR CF" taken before it)."""
    cpu.flags.cf = cf
    cpu.flags.of = ((result >> (size - 1)) ^ (result >> (size - 2))) & 1


@implements("RCL")
def rcl(cpu: Cpu, dst: Operand, count_src: Operand) -> None:
    """CF:DEST := CF:DEST rotated left by tempCOUNT, where tempCOUNT = COUNT MOD (SIZE+1)
    for 8/16-bit operands; OF := MSB(DEST) XOR CF."""
    value = dst.read()
    count = count_src.read() & COUNT_MASK
    if count == 0:
        return
    size = dst.size
    wide = _rotl((cpu.flags.cf << size) | value, count % (size + 1), size + 1)
    result, cf = wide & dst.mask, wide >> size
    dst.write(result)
    cpu.flags.cf = cf
    cpu.flags.of = (result >> (size - 1)) ^ cf


@implements("RCR")
def rcr(cpu: Cpu, dst: Operand, count_src: Operand) -> None:
    """CF:DEST := CF:DEST rotated right by tempCOUNT (COUNT MOD (SIZE+1) for 8/16-bit);
    OF := MSB(DEST) XOR CF taken before the rotation."""
    value = dst.read()
    count = count_src.read() & COUNT_MASK
    if count == 0:
        return
    size = dst.size
    turns = count % (size + 1)
    wide = _rotl((cpu.flags.cf << size) | value, (size + 1 - turns) % (size + 1), size + 1)
    result = wide & dst.mask
    dst.write(result)
    _set_rotate_right_flags(cpu, result, size, wide >> size)


def _double_shift(cpu: Cpu, dst: Operand, src: Operand, count_src: Operand, left: bool) -> None:
    """SHLD/SHRD on the 3*SIZE-bit value DEST:SRC:DEST. The SDM leaves a 16-bit double
    shift with a count above 16 undefined; Intel CPUs (and QEMU, hence Unicorn) shift this
    triple, so one formula covers every count and matches them. For counts up to SIZE it
    is exactly the SDM's DEST:SRC (SHLD) or SRC:DEST (SHRD) shift."""
    size = dst.size
    value = dst.read()
    wide = (value << (2 * size)) | (src.read() << size) | value
    count = count_src.read() & COUNT_MASK
    if count == 0:
        return
    if left:
        result, cf = (wide >> (2 * size - count)) & dst.mask, (wide >> (3 * size - count)) & 1
    else:
        result, cf = (wide >> count) & dst.mask, (wide >> (count - 1)) & 1
    dst.write(result)
    sign_change = (result ^ value) >> (size - 1)  # OF for 1-bit shifts: MSB(DEST) changed
    _set_shift_flags(cpu, result, size, cf, sign_change)


@implements("SHLD")
def shld(cpu: Cpu, dst: Operand, src: Operand, count_src: Operand) -> None:
    """DEST := high SIZE bits of (DEST:SRC << COUNT); CF := last bit out of DEST;
    OF := sign change (1-bit shifts)."""
    _double_shift(cpu, dst, src, count_src, left=True)


@implements("SHRD")
def shrd(cpu: Cpu, dst: Operand, src: Operand, count_src: Operand) -> None:
    """DEST := low SIZE bits of (SRC:DEST >> COUNT); CF := last bit out of DEST;
    OF := sign change (1-bit shifts)."""
    _double_shift(cpu, dst, src, count_src, left=False)
