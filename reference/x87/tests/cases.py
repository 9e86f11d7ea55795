"""Random x87 cases for the native oracle: an encoding of one table row and a drawn FPU
state, with the values that find the edges (zeros, denormals, infinities, quiet and
signalling NaNs, unsupported encodings, integers, values near each other, values near
the overflow and underflow thresholds of every format)."""

from __future__ import annotations

import random
from typing import List, Tuple

from reference.isa.form import Form
from reference.isa.table import FORMS
from reference.x87.tests.native import EBX_OFFSET, X87Case, X87State

J = 1 << 63
SIZES = {"Mw": 2, "Md": 4, "Mq": 8, "Mt": 10, "M": 108}


def value80(rng: random.Random) -> int:
    """An 80-bit value, weighted toward the interesting classes."""
    sign = rng.getrandbits(1) << 79
    kind = rng.randrange(100)
    if kind < 45:      # normal near 1 (exponent within +-70)
        return sign | (16383 + rng.randint(-70, 70)) << 64 | J | rng.getrandbits(63)
    if kind < 55:      # normal anywhere
        return sign | rng.randint(1, 0x7FFE) << 64 | J | rng.getrandbits(63)
    if kind < 62:      # near the single/double/extended thresholds
        edge = rng.choice((16383 + 127, 16383 - 126, 16383 + 1023, 16383 - 1022,
                           16383 - 149, 16383 - 1074, 1, 0x7FFE, 16383 + 63, 16383 + 31))
        sig = rng.choice((J | rng.getrandbits(63), (1 << 64) - 1, J, J | rng.getrandbits(20)))
        return sign | max(1, min(0x7FFE, edge + rng.randint(-2, 2))) << 64 | sig
    if kind < 70:      # small integers and halves (FIST, FRNDINT, FPREM)
        n = rng.randint(1, 1 << rng.choice((3, 8, 16, 31, 40, 63)))
        shift = rng.choice((0, 0, 1, 2))
        return sign | (16383 + n.bit_length() - 1 - shift) << 64 | n << (64 - n.bit_length())
    if kind < 75:
        return sign                                            # zero
    if kind < 80:
        return sign | rng.getrandbits(rng.choice((10, 40, 63)))  # denormal
    if kind < 85:
        return sign | 0x7FFF << 64 | J                          # infinity
    if kind < 90:
        return sign | 0x7FFF << 64 | J | 1 << 62 | rng.getrandbits(rng.choice((0, 20, 62)))
    if kind < 95:
        return sign | 0x7FFF << 64 | J | rng.getrandbits(rng.choice((1, 20, 62))) | 1
    if kind < 97:
        return sign | 0x7FFF << 64 | J | 1 << 62               # the default NaN class
    return sign | rng.randint(1, 0x7FFF) << 64 | rng.getrandbits(63)  # unsupported


def control_word(rng: random.Random) -> int:
    """Mostly all exceptions masked; sometimes some unmasked (deferred #MF, ES/B)."""
    masks = 0x3F if rng.randrange(4) else rng.getrandbits(6)
    pc = rng.choice((0, 2, 3, 3))
    return 0x0040 | masks | pc << 8 | rng.randrange(4) << 10


def state(rng: random.Random) -> X87State:
    depth = rng.choice((0, 1, 2, 2, 3, 3, 4, 8, 8))
    empty = tuple(i >= depth for i in range(8))
    if rng.randrange(6) == 0:    # holes: stack faults on other operands
        empty = tuple(rng.randrange(3) == 0 for _ in range(8))
    st = tuple(value80(rng) for _ in range(8))
    top = rng.randrange(8)
    conditions = rng.choice((0, 0x4700))
    status = top << 11 | (conditions & rng.getrandbits(16))
    control = control_word(rng)
    if rng.randrange(4) == 0:  # exceptions already flagged; unmasked ones are pending
        flagged = rng.getrandbits(7)
        pending = flagged & ~control & 0x3F
        status |= flagged | (0x8080 if pending else 0)
    return X87State(control, status, empty, st)


def _memory_value(form: Form, rng: random.Random, size: int) -> bytes:
    """Bytes for a memory source: a drawn value in the form's format."""
    if form.mnemonic in REAL_SOURCES:
        return _real_bytes(rng, size)
    if form.mnemonic.startswith("FI") or form.mnemonic == "FBLD":
        if form.mnemonic == "FBLD":
            digits = rng.randint(0, 10 ** 18 - 1)
            packed = int(str(digits), 16) | rng.getrandbits(1) << 79
            return packed.to_bytes(10, "little")
        bits = 8 * size
        n = rng.choice((rng.getrandbits(bits), rng.randint(-100, 100) % (1 << bits)))
        return n.to_bytes(size, "little")
    return bytes(rng.getrandbits(8) for _ in range(size))


TRANSCENDENTAL = ("FSIN", "FCOS", "FSINCOS", "FPTAN", "FPATAN", "F2XM1", "FYL2X", "FYL2XP1")
REAL_SOURCES = ("FLD", "FADD", "FMUL", "FCOM", "FCOMP", "FSUB", "FSUBR", "FDIV", "FDIVR")
PE_UE = 0x30


def in_fyl2xp1_range(x: int) -> bool:
    """Whether FYL2XP1 defines its result for ST(0) = x: |x| < 1 - sqrt(2)/2, NaNs and
    unsupported encodings included (SDM Vol. 2A, FYL2XP1: outside the range "the result
    is undefined" and exceptions are "implementation specific"; this AMD CPU returns
    ST(1) with PE for x < -1, QEMU raises #IA beyond AMD's wider range). Below 0.25 in
    magnitude counts as inside: simpler than the irrational bound, and as good a test."""
    exponent, sig = x >> 64 & 0x7FFF, x & ((1 << 64) - 1)
    return exponent < 16381 or not sig & J or (exponent == 0x7FFF and sig != J)


def vendor_status(mnemonic: str, x: int) -> int:
    """The status bits vendors set differently for ST(0) = x, taken from the CPU.

    FYL2X of an exact power of two 2**k (k != 0) is the product k * ST(1), exact when
    it fits 64 bits: the reference raises no PE there, as #P means "cannot be
    represented exactly" (SDM Vol. 2A, FYL2X: Floating-Point Exceptions), and neither
    does QEMU's FYL2X; this AMD CPU raises PE (and UE for a tiny result) all the same.
    Such a case keeps PE and UE masked, so only those two status bits can differ."""
    exponent, sig = x >> 64, x & ((1 << 64) - 1)     # exponent with the sign: positive
    power_of_two = 0 < exponent < 0x7FFF and exponent != 16383 and sig == J
    return PE_UE if mnemonic == "FYL2X" and power_of_two else 0


def _log_operands(form: Form, rng: random.Random, drawn: X87State) -> X87State:
    """FYL2X/FYL2XP1: an ST(0) outside FYL2XP1's range gets an exponent inside it; PE
    and UE are masked where they are left to the vendor (``vendor_status``)."""
    st = list(drawn.st)
    if form.mnemonic == "FYL2XP1" and not in_fyl2xp1_range(st[0]):
        st[0] = (st[0] >> 79) << 79 | rng.randint(16383 - 70, 16380) << 64 | J \
            | rng.getrandbits(63)
    control = drawn.control | vendor_status(form.mnemonic, st[0])
    return X87State(control, drawn.status, drawn.empty, tuple(st))




def _real_bytes(rng: random.Random, size: int) -> bytes:
    """A m32/m64/m80 value: drawn like a register value, rounded into the format."""
    v = value80(rng)
    if size == 10:
        return v.to_bytes(10, "little")
    from reference.x87.extended import DOUBLE, SINGLE, exact, fields, round_exact
    fmt = SINGLE if size == 4 else DOUBLE
    if fields(v)[1] == 0x7FFF or rng.randrange(8) == 0:   # NaN, infinity or raw bits
        return rng.getrandbits(8 * size).to_bytes(size, "little")
    bits = round_exact(*exact(v), fmt, fmt.precision).bits
    return bits.to_bytes(size, "little")


def encode(form: Form, rng: random.Random) -> X87Case:
    """One instance of an x87 row: ST(i) drawn, memory at [EBX+disp8]."""
    opcode = list(form.enc.opcode)
    ignore: Tuple[Tuple[int, int], ...] = ()
    data = bytearray(rng.getrandbits(8) for _ in range(640))
    if form.enc.plus_r:
        opcode[-1] |= rng.randrange(8)
    code = bytes(opcode)
    if form.mnemonic in ("FNSTENV", "FLDENV", "FNSAVE", "FRSTOR") and rng.randrange(2):
        code = b"\x66" + code  # the 16-bit environment layout
    if form.enc.digit is not None:
        spec = form.specs[0]
        size = SIZES.get(spec, 4)
        if form.mnemonic in ("FXSAVE", "FXRSTOR"):
            disp = rng.choice((0, 16, 32, 48))
        else:
            disp = rng.randrange(-EBX_OFFSET, 640 - EBX_OFFSET - 512) if size == 108 \
                else rng.randrange(-EBX_OFFSET, 128 - size)
        code += bytes([0x43 | form.enc.digit << 3, disp & 0xFF])
        size = 94 if code[0] == 0x66 and size == 108 else size
        at = EBX_OFFSET + disp
        value = _memory_value(form, rng, min(size, 108))
        data[at:at + len(value)] = value
        if form.mnemonic == "FXSAVE":  # MXCSR_MASK and the XMM area: not modelled
            ignore = ((at + 28, at + 32), (at + 160, at + 512))
        if form.mnemonic == "FXRSTOR":
            data[at + 24:at + 28] = (0x1F80 | rng.randrange(0x40)).to_bytes(4, "little")
    drawn = state(rng)
    if form.mnemonic in ("FYL2X", "FYL2XP1"):
        drawn = _log_operands(form, rng, drawn)
    return X87Case(code, drawn, eax=rng.getrandbits(32), eflags=rng.getrandbits(12),
                   data=bytes(data), ignore=ignore, ulp=form.mnemonic in TRANSCENDENTAL,
                   open_status=vendor_status(form.mnemonic, drawn.st[0]))


def x87_forms() -> List[Form]:
    """Rows of the table in reference/x87 (ESC opcodes and FXSAVE/FXRSTOR) that have
    semantics (all of them: the filter keeps a gap out of the oracle tests, where the
    coverage report shows it)."""
    from reference.semantics import lookup
    return [f for f in FORMS if (0xD8 <= f.enc.opcode[0] <= 0xDF or f.name == "WAIT"
                                 or f.enc.opcode[:2] == (0x0F, 0xAE)) and lookup(f)]
