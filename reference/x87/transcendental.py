"""x87 transcendental instructions (SDM Vol. 2A: FSIN, FCOS, FSINCOS, FPTAN, FPATAN,
F2XM1, FYL2X, FYL2XP1); the functions themselves are in ``reference.x87.functions``.

FSIN/FCOS/FSINCOS/FPTAN take |ST(0)| < 2**63: beyond it C2 := 1 and nothing else
changes; otherwise C2 := 0."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

from reference.x87.arith import Outcome
from reference.x87.common import PRE_COMPUTATION, control, deliver, underflow, x87
from reference.x87.extended import DEFAULT_NAN, is_nan
from reference.x87.fpu import C1, C2
from reference.x87.functions import (
    arctangent,
    log2_plus_one_times,
    log2_times,
    sin_cos,
    tangent,
    two_to_x_minus_one,
)

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

ONE = 0x3FFF_8000_0000_0000_0000


def out_of_range(cpu: Cpu) -> None:
    """|ST(0)| >= 2**63: C2 := 1, C1 := 0, nothing else (measured: C1 is cleared)."""
    cpu.fpu.status = (cpu.fpu.status | C2) & ~C1


def _reduced(cpu: Cpu, compute: Callable[[int], Optional[Outcome]]) -> None:
    """FSIN/FCOS: one result in ST(0), or C2 := 1 when out of range."""
    fpu = cpu.fpu
    fpu.status &= ~C2
    if fpu.is_empty(0):
        underflow(cpu, 0)
        return
    out = compute(fpu.st(0))
    if out is None:
        out_of_range(cpu)
        return
    fpu.status &= ~C2
    deliver(cpu, out, 0)


@x87("FSIN")
def fsin(cpu: Cpu) -> None:
    _reduced(cpu, lambda a: sin_cos(a, control(cpu, False))[0])


@x87("FCOS")
def fcos(cpu: Cpu) -> None:
    _reduced(cpu, lambda a: sin_cos(a, control(cpu, False))[1])


def _two_results(cpu: Cpu, compute: Callable[[int], Optional[tuple]]) -> None:
    """FSINCOS/FPTAN: ST(0) := first; push second. Stack faults as for a push."""
    fpu = cpu.fpu
    fpu.status &= ~C2
    if fpu.is_empty(0) or not fpu.is_empty(7):
        if fpu.stack_fault(not fpu.is_empty(7) and not fpu.is_empty(0)):
            fpu.set_st(0, DEFAULT_NAN)
            fpu.push(DEFAULT_NAN)
        return
    pair = compute(fpu.st(0))
    if pair is None:
        out_of_range(cpu)
        return
    fpu.status &= ~C2
    first, second = pair
    flags = first.flags | second.flags
    fpu.set_c1(first.up)
    if fpu.unmasked(flags & PRE_COMPUTATION):
        fpu.set_c1(False)
        fpu.signal(flags & PRE_COMPUTATION)
        return
    fpu.set_st(0, first.value)
    fpu.push(second.value)
    fpu.signal(flags)


@x87("FSINCOS")
def fsincos(cpu: Cpu) -> None:
    """ST(0) := sin; push cos."""
    def both(a: int) -> Optional[tuple]:
        sine, cosine = sin_cos(a, control(cpu, False))
        return None if sine is None else (sine, cosine)
    _two_results(cpu, both)


@x87("FPTAN")
def fptan(cpu: Cpu) -> None:
    """ST(0) := tan; push 1.0."""
    def pair(a: int) -> Optional[tuple]:
        t = tangent(a, control(cpu, False))
        if t is None:
            return None
        return t, Outcome(t.value if is_nan(t.value) else ONE)  # a NaN is pushed twice
    _two_results(cpu, pair)


def _binary_pop(cpu: Cpu, compute: Callable[[int, int], Outcome]) -> None:
    """ST(1) := f(ST(1), ST(0)); pop."""
    fpu = cpu.fpu
    if fpu.is_empty(0) or fpu.is_empty(1):
        underflow(cpu, 1, 1)
        return
    deliver(cpu, compute(fpu.st(1), fpu.st(0)), 1, 1)


@x87("FPATAN")
def fpatan(cpu: Cpu) -> None:
    _binary_pop(cpu, lambda y, x: arctangent(y, x, control(cpu, False)))


@x87("FYL2X")
def fyl2x(cpu: Cpu) -> None:
    """ST(1) := ST(1) * log2(ST(0)); pop."""
    _binary_pop(cpu, lambda y, x: log2_times(y, x, control(cpu, False)))


@x87("FYL2XP1")
def fyl2xp1(cpu: Cpu) -> None:
    """ST(1) := ST(1) * log2(ST(0) + 1.0); pop."""
    _binary_pop(cpu, lambda y, x: log2_plus_one_times(y, x, control(cpu, False)))


@x87("F2XM1")
def f2xm1(cpu: Cpu) -> None:
    fpu = cpu.fpu
    if fpu.is_empty(0):
        underflow(cpu, 0)
        return
    deliver(cpu, two_to_x_minus_one(fpu.st(0), control(cpu, False)), 0)
