"""What every x87 instruction does around its own work: the entry checks (#NM, #MF),
reading memory operands in their formats, writing a result with the masked/unmasked
response, stack underflow, and the last-instruction pointers (SDM Vol. 1, 8.1.8).

Semantics read every memory operand before they change FPU state, and write memory
before they change it too, so a fault (which rolls memory back) leaves the FPU as it
was: the step loop knows nothing about the FPU.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable, Optional, Tuple

from reference.semantics import implements
from reference.x87.arith import Control, Outcome
from reference.x87.extended import (
    DE,
    DEFAULT_NAN,
    DOUBLE,
    IE,
    SINGLE,
    ZE,
    from_ieee,
    from_integer,
)
from reference.x87.fpu import entry_checks

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

CS_INDEX = 1
PRE_COMPUTATION = IE | DE | ZE   # unmasked: the destination is left alone (8.5)

Semantics = Callable[..., None]


def x87(*keys: str, waiting: bool = True, pointers: bool = True) -> Callable[[Semantics],
                                                                               Semantics]:
    """Register an x87 instruction. ``waiting=False`` for the FN* forms that do not check
    for pending exceptions; ``pointers=False`` for the control instructions that leave
    FIP/FDP/FOP alone (FLDCW, FSTCW, FSTSW, FCLEX, FINIT, FLDENV, FSTENV, FSAVE, FRSTOR)."""

    def register(fn: Semantics) -> Semantics:
        @functools.wraps(fn)
        def run(cpu: Cpu, *operands: object) -> None:
            entry_checks(cpu, waiting)
            fn(cpu, *operands)
            if pointers:
                _record_pointers(cpu, operands)

        implements(*keys)(run)
        return fn

    return register


def _record_pointers(cpu: Cpu, operands: Tuple[object, ...]) -> None:
    """FIP/FCS, FOP (low 3 bits of the opcode byte and the ModRM byte), FDP/FDS."""
    fpu = cpu.fpu
    insn = cpu.insn
    raw = insn.raw
    at = next(i for i, byte in enumerate(raw) if 0xD8 <= byte <= 0xDF)
    fpu.fop = (raw[at] & 7) << 8 | (raw[at + 1] if at + 1 < len(raw) else 0)
    fpu.fip = (cpu.eip - insn.length) & 0xFFFFFFFF
    fpu.fcs = cpu.sregs[CS_INDEX]
    for op in operands:
        if getattr(op, "is_mem", False):
            fpu.fdp = op.offset()  # type: ignore[attr-defined]
            fpu.fds = cpu.sregs[op.seg]  # type: ignore[attr-defined]


def control(cpu: Cpu, precision_applies: bool = True) -> Control:
    return Control.from_cw(cpu.fpu.control, precision_applies)


# -- memory operands ---------------------------------------------------------------------

def read_mem(cpu: Cpu, op: object, nbytes: int) -> int:
    return cpu.read(op.seg, op.offset(), nbytes)  # type: ignore[attr-defined]


def write_mem(cpu: Cpu, op: object, nbytes: int, value: int) -> None:
    cpu.write(op.seg, op.offset(), nbytes, value)  # type: ignore[attr-defined]


def read_real(cpu: Cpu, op: object) -> Tuple[int, int]:
    """A m32fp/m64fp/m80fp operand as (80-bit value, flags of the conversion)."""
    size = op.size  # type: ignore[attr-defined]
    if size == 80:
        return read_mem(cpu, op, 10), 0
    fmt = SINGLE if size == 32 else DOUBLE
    return from_ieee(read_mem(cpu, op, size >> 3), fmt)


def read_int(cpu: Cpu, op: object) -> int:
    """A m16int/m32int/m64int operand as its exact 80-bit value."""
    size = op.size  # type: ignore[attr-defined]
    raw = read_mem(cpu, op, size >> 3)
    if raw >> (size - 1):
        raw -= 1 << size
    return from_integer(raw)


def source_value(cpu: Cpu, op: object) -> Tuple[Optional[int], int]:
    """The second operand of an arithmetic form: ST(i) (None if empty) or memory."""
    if hasattr(op, "i"):
        fpu = cpu.fpu
        return (None if fpu.is_empty(op.i) else fpu.st(op.i)), 0  # type: ignore[attr-defined]
    if cpu.insn.form.mnemonic.startswith("FI"):
        return read_int(cpu, op), 0
    return read_real(cpu, op)


# -- results ----------------------------------------------------------------------------

def underflow(cpu: Cpu, dest: Optional[int], pops: int = 0) -> None:
    """A source register was empty: IE|SF, C1=0; masked, the destination gets the
    default NaN and the instruction completes (pops included)."""
    fpu = cpu.fpu
    if fpu.stack_fault(False):
        if dest is not None:
            fpu.set_st(dest, DEFAULT_NAN)
        for _ in range(pops):
            fpu.pop()


def deliver(cpu: Cpu, out: Outcome, dest: int, pops: int = 0) -> None:
    """Write ``out`` to ST(dest) and pop ``pops`` times, unless an unmasked invalid,
    denormal or divide-by-zero exception stops it; C1 tells whether it rounded up."""
    fpu = cpu.fpu
    stopping = fpu.unmasked(out.flags & PRE_COMPUTATION)
    fpu.set_c1(out.up and not stopping)
    if stopping:
        fpu.signal(out.flags & PRE_COMPUTATION)
        return
    fpu.set_st(dest, out.value)
    fpu.signal(out.flags)
    for _ in range(pops):
        fpu.pop()
