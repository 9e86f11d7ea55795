"""Multiply and divide family: MUL IMUL DIV IDIV (SDM Vol. 2A/2B).

The one-operand forms work on the accumulator pair: AL and AH for bytes (AH:AL = AX),
DX:AX for words, EDX:EAX for doublewords. MUL/IMUL set CF = OF when the product needs the
upper half; SF ZF AF PF are undefined and left alone. DIV/IDIV raise #DE for a zero
divisor or a quotient that does not fit, before anything is written; all six status
flags are undefined after them and are left alone.
"""

from __future__ import annotations

from reference.cpu import Cpu
from reference.faults import DE, Fault
from reference.operands import Operand, gpr
from reference.semantics import implements

EAX, EDX, AH = 0, 2, 4  # ModRM register numbers


def _low(cpu: Cpu, size: int) -> Operand:
    """AL, AX or EAX: the low half of the accumulator pair."""
    return gpr(cpu, EAX, size)


def _high(cpu: Cpu, size: int) -> Operand:
    """AH, DX or EDX: the high half of the accumulator pair."""
    return gpr(cpu, AH if size == 8 else EDX, size)


def _read_pair(cpu: Cpu, size: int) -> int:
    """AX, DX:AX or EDX:EAX as one 2*size-bit unsigned number."""
    return (_high(cpu, size).read() << size) | _low(cpu, size).read()


def _write_pair(cpu: Cpu, size: int, low: int, high: int) -> None:
    """AL/AX/EAX := low; AH/DX/EDX := high (both already masked to ``size``)."""
    _low(cpu, size).write(low)
    _high(cpu, size).write(high)


def _set_carry_overflow(cpu: Cpu, lost: bool) -> None:
    """CF := OF := 1 when the result did not fit its destination, else 0."""
    cpu.flags.cf = cpu.flags.of = 1 if lost else 0


def _signed(value: int, size: int) -> int:
    """``value`` truncated to ``size`` bits and read as two's complement."""
    value &= (1 << size) - 1
    return value - (1 << size) if value >> (size - 1) else value


@implements("MUL")
def mul(cpu: Cpu, src: Operand) -> None:
    """AX := AL * SRC; DX:AX := AX * SRC; EDX:EAX := EAX * SRC (unsigned).
    CF = OF = 0 if the upper half of the product is 0, else 1."""
    size = src.size
    product = _low(cpu, size).read() * src.read()
    _write_pair(cpu, size, product & src.mask, product >> size)
    _set_carry_overflow(cpu, product >> size != 0)


@implements("IMUL")
def imul(cpu: Cpu, *operands: Operand) -> None:
    """Signed multiply. One operand (F6/F7 /5): pair := accumulator * SRC. Two (0F AF):
    DEST := DEST * SRC. Three (69, 6B): DEST := SRC1 * imm. CF = OF = 1 when the full
    product differs from its truncation to the destination size, sign-extended."""
    if len(operands) == 1:
        src = operands[0]
        size = src.size
        product = src.sign(_low(cpu, size).read()) * src.sign(src.read())
        _write_pair(cpu, size, product & src.mask, (product >> size) & src.mask)
    else:
        # IMUL r, r/m is DEST := DEST * SRC; IMUL r, r/m, imm is DEST := SRC1 * SRC2
        dst, multiplicand, multiplier = operands if len(operands) == 3 else operands[:1] + operands
        size = dst.size
        product = multiplicand.sign(multiplicand.read()) * multiplier.sign(multiplier.read())
        dst.write(product & dst.mask)
    _set_carry_overflow(cpu, _signed(product, size) != product)


@implements("DIV")
def div(cpu: Cpu, src: Operand) -> None:
    """IF SRC = 0 THEN #DE; temp := pair / SRC (unsigned); IF temp > max THEN #DE;
    AL/AX/EAX := temp; AH/DX/EDX := pair MOD SRC."""
    divisor = src.read()
    if divisor == 0:
        raise Fault(DE)
    quotient, remainder = divmod(_read_pair(cpu, src.size), divisor)
    if quotient > src.mask:
        raise Fault(DE)
    _write_pair(cpu, src.size, quotient, remainder)


@implements("IDIV")
def idiv(cpu: Cpu, src: Operand) -> None:
    """IF SRC = 0 THEN #DE; temp := pair / SRC (signed, truncated toward zero); IF temp
    does not fit the signed size THEN #DE (so -2^31 / -1 faults); the remainder takes
    the dividend's sign."""
    size = src.size
    divisor = src.sign(src.read())
    if divisor == 0:
        raise Fault(DE)
    dividend = _signed(_read_pair(cpu, size), 2 * size)
    quotient = abs(dividend) // abs(divisor)
    if (dividend < 0) != (divisor < 0):
        quotient = -quotient
    if not -(1 << (size - 1)) <= quotient < (1 << (size - 1)):
        raise Fault(DE)
    remainder = dividend - quotient * divisor
    _write_pair(cpu, size, quotient & src.mask, remainder & src.mask)
