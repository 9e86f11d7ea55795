"""x87 control instructions (SDM Vol. 2A: FINIT/FNINIT, FCLEX/FNCLEX, FLDCW, FSTCW,
FSTSW, FNOP, FSTENV/FLDENV, FSAVE/FRSTOR, FXSAVE/FXRSTOR) and the memory layouts of
the environment and state images (SDM Vol. 1, 8.1.10 and Figures 8-9 to 8-12; Vol. 2A,
FXSAVE Table 3-53).

The environment has four layouts: 16- or 32-bit (the operand size) by real or protected
mode. In real mode the pointers are linear (CS*16 + IP) and split around the opcode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Tuple

from reference.faults import GP, Fault
from reference.semantics import implements
from reference.x87.common import read_mem, write_mem, x87
from reference.x87.fpu import BUSY, ES, EXCEPTIONS, SF, Fpu, wait_checks

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

RESERVED_HIGH = 0xFFFF0000   # the upper halves a 32-bit FSTENV writes (as measured)
REGISTER_BYTES = 10
MXCSR_MASK = 0xFFBF          # Pentium III: no DAZ
FXSAVE_X87_BYTES = 160       # x87 part of the 512-byte image; the XMM part is not modelled


def _fields(fpu: Fpu, size: int, real: bool) -> List[int]:
    """The environment as 7 fields of ``size`` bits, in memory order."""
    words = [fpu.control, fpu.status_word, fpu.tag_word]
    if real:
        fip = (fpu.fcs << 4) + fpu.fip
        fdp = (fpu.fds << 4) + fpu.fdp
        high = 16 if size == 32 else 4
        words += [fip & 0xFFFF, (fip >> 16 & ((1 << high) - 1)) << 12 | fpu.fop,
                  fdp & 0xFFFF, (fdp >> 16 & ((1 << high) - 1)) << 12]
    elif size == 32:
        words += [fpu.fip, fpu.fcs | fpu.fop << 16, fpu.fdp, fpu.fds]
    else:
        words += [fpu.fip & 0xFFFF, fpu.fcs, fpu.fdp & 0xFFFF, fpu.fds]
    if size == 32:
        padded = (0, 1, 2, 3, 5) if real else (0, 1, 2, 6)
        words = [w | RESERVED_HIGH if n in padded else w for n, w in enumerate(words)]
    return words


def env_image(fpu: Fpu, size: int, real: bool) -> Tuple[int, int]:
    """(the environment as one little-endian integer, its length in bytes)."""
    nbytes = size >> 3
    value = 0
    for n, word in enumerate(_fields(fpu, size, real)):
        value |= word << (8 * nbytes * n)
    return value, 7 * nbytes


def load_env(fpu: Fpu, image: int, size: int, real: bool) -> None:
    """FLDENV/FRSTOR: the inverse of ``env_image`` (tags: only empty or not is kept)."""
    mask = (1 << size) - 1
    words = [image >> (size * n) & mask for n in range(7)]
    fpu.set_control(words[0] & 0xFFFF)
    fpu.status_word = words[1] & 0xFFFF
    fpu.set_tag_word(words[2] & 0xFFFF)
    if real:
        fpu.fcs = fpu.fds = 0
        fpu.fip = words[3] & 0xFFFF | (words[4] >> 12) << 16
        fpu.fop = words[4] & 0x7FF
        fpu.fdp = words[5] & 0xFFFF | (words[6] >> 12) << 16
    elif size == 32:
        fpu.fip, fpu.fcs, fpu.fop = words[3], words[4] & 0xFFFF, words[4] >> 16 & 0x7FF
        fpu.fdp, fpu.fds = words[5], words[6] & 0xFFFF
    else:
        fpu.fip, fpu.fcs, fpu.fdp, fpu.fds = words[3], words[4], words[5], words[6]
    fpu.update_summary()


def _layout(cpu: Cpu) -> Tuple[int, bool]:
    return cpu.insn.opsize, cpu.mode != "prot32"  # real and virtual-8086: one layout


@x87("FNINIT", waiting=False, pointers=False)
def fninit(cpu: Cpu) -> None:
    """CW := 037FH; SW := 0; all tags empty; pointers 0."""
    cpu.fpu.reset()


@x87("FNCLEX", waiting=False, pointers=False)
def fnclex(cpu: Cpu) -> None:
    """Clear PE UE OE ZE DE IE, SF, ES and B."""
    cpu.fpu.status &= ~(EXCEPTIONS | SF | ES | BUSY)


@x87("FLDCW", pointers=False)
def fldcw(cpu: Cpu, src: object) -> None:
    cpu.fpu.set_control(read_mem(cpu, src, 2))


@x87("FNSTCW", waiting=False, pointers=False)
def fnstcw(cpu: Cpu, dest: object) -> None:
    write_mem(cpu, dest, 2, cpu.fpu.control)


@x87("FNSTSW", waiting=False, pointers=False)
def fnstsw(cpu: Cpu, dest: object) -> None:
    write_mem(cpu, dest, 2, cpu.fpu.status_word)


@x87("FNSTSW_AX", waiting=False, pointers=False)
def fnstsw_ax(cpu: Cpu) -> None:
    cpu.set_reg("ax", cpu.fpu.status_word)


@implements("WAIT")
def fwait(cpu: Cpu) -> None:
    """FWAIT: #NM only when CR0.MP and CR0.TS are both set; then a pending unmasked
    exception raises #MF (CR0.NE) or asserts FERR#. The pointers are not touched."""
    wait_checks(cpu)


@x87("FNOP")
def fnop(cpu: Cpu) -> None:
    """No operation (but a waiting instruction that records the pointers)."""


@x87("FNSTENV", waiting=False, pointers=False)
def fnstenv(cpu: Cpu, dest: object) -> None:
    """Store the environment, then mask every exception (SDM Vol. 2A, FSTENV)."""
    fpu = cpu.fpu
    image, nbytes = env_image(fpu, *_layout(cpu))
    write_mem(cpu, dest, nbytes, image)
    fpu.set_control(fpu.control | EXCEPTIONS)


@x87("FLDENV", pointers=False)
def fldenv(cpu: Cpu, src: object) -> None:
    size, real = _layout(cpu)
    load_env(cpu.fpu, read_mem(cpu, src, 7 * (size >> 3)), size, real)


def _registers_image(fpu: Fpu) -> int:
    value = 0
    for i in range(8):
        value |= fpu.st(i) << (80 * i)
    return value


@x87("FNSAVE", waiting=False, pointers=False)
def fnsave(cpu: Cpu, dest: object) -> None:
    """Store the environment and ST(0)..ST(7), then initialise (as FNINIT)."""
    fpu = cpu.fpu
    image, nbytes = env_image(fpu, *_layout(cpu))
    image |= _registers_image(fpu) << (8 * nbytes)
    write_mem(cpu, dest, nbytes + 8 * REGISTER_BYTES, image)
    fpu.reset()


@x87("FRSTOR", pointers=False)
def frstor(cpu: Cpu, src: object) -> None:
    size, real = _layout(cpu)
    nbytes = 7 * (size >> 3)
    image = read_mem(cpu, src, nbytes + 8 * REGISTER_BYTES)
    fpu = cpu.fpu
    load_env(fpu, image, size, real)
    registers = image >> (8 * nbytes)
    for i in range(8):
        fpu.regs[fpu.physical(i)] = registers >> (80 * i) & ((1 << 80) - 1)


def _aligned(cpu: Cpu, op: object) -> None:
    """FXSAVE/FXRSTOR: a memory operand not on a 16-byte boundary is #GP(0)."""
    linear = cpu.seg_base[op.seg] + op.offset()  # type: ignore[attr-defined]
    if linear & 15:
        raise Fault(GP, 0)


def fxsave_image(fpu: Fpu) -> int:
    """The first 160 bytes of the FXSAVE image: the x87 state and MXCSR."""
    abridged = sum(1 << r for r in range(8) if not fpu.empty[r])
    fields = [(fpu.control, 2), (fpu.status_word, 2), (abridged, 1), (0, 1), (fpu.fop, 2),
              (fpu.fip, 4), (fpu.fcs, 2), (0, 2), (fpu.fdp, 4), (fpu.fds, 2), (0, 2),
              (fpu.mxcsr, 4), (MXCSR_MASK, 4)]
    value, at = 0, 0
    for field, nbytes in fields:
        value |= field << (8 * at)
        at += nbytes
    for i in range(8):
        value |= fpu.st(i) << (8 * (32 + 16 * i))
    return value


@x87("FXSAVE", waiting=False, pointers=False)
def fxsave(cpu: Cpu, dest: object) -> None:
    """Store the x87 state (abridged tags) and MXCSR; no pending-exception check."""
    _aligned(cpu, dest)
    write_mem(cpu, dest, FXSAVE_X87_BYTES, fxsave_image(cpu.fpu))


@x87("FXRSTOR", waiting=False, pointers=False)
def fxrstor(cpu: Cpu, src: object) -> None:
    """Load the x87 state and MXCSR; reserved MXCSR bits set -> #GP(0)."""
    _aligned(cpu, src)
    image = read_mem(cpu, src, FXSAVE_X87_BYTES)
    mxcsr = image >> (8 * 24) & 0xFFFFFFFF
    if mxcsr & ~MXCSR_MASK:
        raise Fault(GP, 0)
    fpu = cpu.fpu
    fpu.set_control(image & 0xFFFF)
    fpu.status_word = image >> 16 & 0xFFFF
    abridged = image >> 32 & 0xFF
    fpu.empty = [not abridged >> r & 1 for r in range(8)]
    fpu.fop = image >> 48 & 0x7FF
    fpu.fip = image >> 64 & 0xFFFFFFFF
    fpu.fcs = image >> 96 & 0xFFFF
    fpu.fdp = image >> 128 & 0xFFFFFFFF
    fpu.fds = image >> 160 & 0xFFFF
    fpu.mxcsr = mxcsr
    for i in range(8):
        fpu.regs[fpu.physical(i)] = image >> (8 * (32 + 16 * i)) & ((1 << 80) - 1)
    fpu.update_summary()

