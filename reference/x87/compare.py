"""x87 comparisons and classification (SDM Vol. 2A: FCOM/FCOMP/FCOMPP, FICOM/FICOMP,
FUCOM/FUCOMP/FUCOMPP, FCOMI/FCOMIP/FUCOMI/FUCOMIP, FTST, FXAM)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

from reference.flags import AF, CF, OF, PF, SF, ZF
from reference.x87.arith import denormal_flag
from reference.x87.common import source_value, x87
from reference.x87.extended import (
    DE,
    DENORMAL,
    IE,
    INFINITY,
    NORMAL,
    QNAN,
    SNAN,
    UNSUPPORTED,
    ZERO,
    classify,
    exact,
)

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

GREATER, LESS, EQUAL, UNORDERED = (0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 1)  # C3 C2 C0


def relation(a: int, b: int, unordered_signals: bool) -> Tuple[Tuple[int, int, int], int]:
    """(C3, C2, C0) and flags for comparing a with b. FCOM (``unordered_signals``) raises
    IE for any NaN; FUCOM only for an SNaN; both for an unsupported encoding."""
    ka, kb = classify(a), classify(b)
    if UNSUPPORTED in (ka, kb):
        return UNORDERED, IE
    if ka in (QNAN, SNAN) or kb in (QNAN, SNAN):
        signalling = unordered_signals or SNAN in (ka, kb)
        return UNORDERED, IE if signalling else 0
    flags = denormal_flag(a, b)
    va, vb = _number(a), _number(b)
    if va == vb:
        return EQUAL, flags
    return (GREATER if va > vb else LESS), flags


def _number(value: int) -> Tuple[int, int]:
    """A comparable (infinity rank, exact value scaled) pair."""
    kind = classify(value)
    sign = value >> 79
    if kind == INFINITY:
        return (-1 if sign else 1), 0
    if kind == ZERO:
        return 0, 0
    _, mantissa, exponent = exact(value)
    scaled = mantissa << (exponent + 20000)  # every finite exponent is above -16446
    return 0, -scaled if sign else scaled


def _compare(cpu: Cpu, src: Optional[object], pops: int, unordered_signals: bool,
             to_eflags: bool = False) -> None:
    fpu = cpu.fpu
    if src is None:
        b: Optional[int] = 0  # FTST compares with +0.0
        flags = 0
    else:
        b, flags = source_value(cpu, src)
    if fpu.is_empty(0) or b is None:
        masked = fpu.stack_fault(False)
        _set_result(cpu, UNORDERED, to_eflags)  # masked or not
        if masked:
            for _ in range(pops):
                fpu.pop()
        return
    result, more = relation(fpu.st(0), b, unordered_signals)
    flags |= more
    _set_result(cpu, result, to_eflags)
    if fpu.unmasked(flags & (IE | DE)):  # the codes are set, C1 kept, nothing popped
        fpu.signal(flags)
        return
    if not to_eflags:
        fpu.set_c1(False)  # FCOMI/FUCOMI leave C1 alone (measured; the SDM: "0")
    fpu.signal(flags)
    for _ in range(pops):
        fpu.pop()


def _set_result(cpu: Cpu, result: Tuple[int, int, int], to_eflags: bool) -> None:
    c3, c2, c0 = result
    if to_eflags:  # ZF PF CF; OF SF AF cleared (SDM Vol. 2A, FCOMI: Flags Affected)
        value = (ZF if c3 else 0) | (PF if c2 else 0) | (CF if c0 else 0)
        cpu.flags.set_status(value, ZF | PF | CF | OF | SF | AF)
    else:
        cpu.fpu.set_conditions(c3, c2, 0, c0)


@x87("FCOM", "FCOMP", "FICOM", "FICOMP")
def fcom(cpu: Cpu, src: object) -> None:
    pops = 1 if cpu.insn.form.mnemonic.endswith("P") else 0
    _compare(cpu, src, pops, unordered_signals=True)


@x87("FUCOM", "FUCOMP")
def fucom(cpu: Cpu, src: object) -> None:
    pops = 1 if cpu.insn.form.mnemonic.endswith("P") else 0
    _compare(cpu, src, pops, unordered_signals=False)


class _St1:
    i = 1


@x87("FCOMPP")
def fcompp(cpu: Cpu) -> None:
    _compare(cpu, _St1(), 2, unordered_signals=True)


@x87("FUCOMPP")
def fucompp(cpu: Cpu) -> None:
    _compare(cpu, _St1(), 2, unordered_signals=False)


@x87("FCOMI", "FCOMIP")
def fcomi(cpu: Cpu, _st0: object, src: object) -> None:
    pops = 1 if cpu.insn.form.mnemonic.endswith("P") else 0
    _compare(cpu, src, pops, unordered_signals=True, to_eflags=True)


@x87("FUCOMI", "FUCOMIP")
def fucomi(cpu: Cpu, _st0: object, src: object) -> None:
    pops = 1 if cpu.insn.form.mnemonic.endswith("P") else 0
    _compare(cpu, src, pops, unordered_signals=False, to_eflags=True)


@x87("FTST")
def ftst(cpu: Cpu) -> None:
    _compare(cpu, None, 0, unordered_signals=True)


FXAM_CLASS = {UNSUPPORTED: (0, 0, 0), QNAN: (0, 0, 1), SNAN: (0, 0, 1), NORMAL: (0, 1, 0),
              INFINITY: (0, 1, 1), ZERO: (1, 0, 0), DENORMAL: (1, 1, 0)}
EMPTY_CLASS = (1, 0, 1)


@x87("FXAM")
def fxam(cpu: Cpu) -> None:
    """C1 := sign of ST(0); C3 C2 C0 := its class (empty included); no exceptions."""
    fpu = cpu.fpu
    value = fpu.st(0)
    c3, c2, c0 = EMPTY_CLASS if fpu.is_empty(0) else FXAM_CLASS[classify(value)]
    fpu.set_conditions(c3, c2, value >> 79, c0)
