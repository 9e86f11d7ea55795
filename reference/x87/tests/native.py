"""The host CPU as the x87 oracle: one instruction from a given FPU state, natively.

``native_x87.c`` is compiled once per session with ``gcc -m32`` (Debian: gcc-multilib);
without it the tests that need it skip with that reason. A case gives the instruction
bytes, the FPU state (control and status words, which registers are empty, ST(0)..ST(7)),
EAX, EFLAGS and a 640-byte data buffer that EBX points into (at byte 64). The runner
loads the state with FRSTOR and saves it with FNSAVE right after the instruction; this
module builds and reads those images itself (not with the reference's own layout code,
which is under test).
"""

from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from reference.faults import MF
from reference.flags import STATUS
from reference.tests.conftest import DATA, make_cpu
from reference.tests.native_i386 import require_program
from reference.x87.fpu import CR0_NE, tag_of

SOURCE = Path(__file__).with_name("native_x87.c")
DATA_SIZE = 640
EBX_OFFSET = 64


@dataclass(frozen=True)
class X87State:
    """What a case sets and what is compared: ``st`` in stack order (ST(0) first)."""

    control: int
    status: int                 # with TOP in bits 13:11
    empty: Tuple[bool, ...]     # per ST(i)
    st: Tuple[int, ...]

    def describe(self) -> str:
        regs = " ".join("empty" if e else f"{v:020x}" for e, v in zip(self.empty, self.st))
        return f"cw={self.control:04x} sw={self.status:04x} st=[{regs}]"


@dataclass(frozen=True)
class X87Case:
    code: bytes
    state: X87State
    eax: int = 0
    eflags: int = 2
    data: bytes = b""
    ignore: Tuple[Tuple[int, int], ...] = ()  # data byte ranges the SDM leaves open
    ulp: bool = False  # transcendental: registers within 1 ulp (then C1 may differ)
    open_status: int = 0  # status bits vendors are known to set differently: the CPU's


@dataclass(frozen=True)
class X87Result:
    """After the instruction (or ``signal``: 8 = SIGFPE, the deferred #MF)."""

    state: Optional[X87State] = None
    tag_word: int = 0
    eax: int = 0
    eflags: int = 0
    data: bytes = b""
    signal: Optional[int] = None

    def compared(self) -> Tuple[object, ...]:
        if self.state is None:
            return ("signal", self.signal)
        s = self.state
        regs = tuple(None if e else v for e, v in zip(s.empty, s.st))
        return (s.control, s.status, self.tag_word, regs, self.eax & 0xFFFF,
                self.eflags & STATUS, self.data)


def save_image(state: X87State) -> bytes:
    """A 32-bit protected-mode FNSAVE image (SDM Vol. 1, Figures 8-10 and 8-12)."""
    top = state.status >> 11 & 7
    tags = 0
    for i, empty in enumerate(state.empty):
        tags |= (3 if empty else 0) << (2 * ((top + i) & 7))
    head = struct.pack("<7I", state.control | 0xFFFF0000, state.status | 0xFFFF0000,
                       tags | 0xFFFF0000, 0, 0, 0, 0xFFFF0000)
    return head + b"".join(v.to_bytes(10, "little") for v in state.st)


def read_image(image: bytes) -> Tuple[X87State, int]:
    """(state, full tag word) from an FNSAVE image."""
    control, status, tags = (struct.unpack_from("<H", image, at)[0] for at in (0, 4, 8))
    top = status >> 11 & 7
    empty = tuple(tags >> (2 * ((top + i) & 7)) & 3 == 3 for i in range(8))
    st = tuple(int.from_bytes(image[28 + 10 * i:38 + 10 * i], "little") for i in range(8))
    return X87State(control, status, empty, st), tags


def require_native() -> Path:
    """The x87 runner, built on first use (skips where gcc -m32 is unavailable)."""
    return require_program(SOURCE, "x87")


def run_native(cases: Sequence[X87Case]) -> List[X87Result]:
    lines = [f"{c.code.hex()} {save_image(c.state).hex()} {c.eax:x} {c.eflags:x} "
             f"{c.data.ljust(DATA_SIZE, bytes(1))[:DATA_SIZE].hex()}" for c in cases]
    done = subprocess.run([str(require_native())], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=300, check=True)
    results = []
    for line in done.stdout.splitlines():
        fields = line.split()
        if fields[0] == "fault":
            results.append(X87Result(signal=int(fields[1])))
            continue
        state, tags = read_image(bytes.fromhex(fields[2]))
        results.append(X87Result(state, tags, int(fields[0], 16), int(fields[1], 16),
                                 bytes.fromhex(fields[3])))
    if len(results) != len(cases):
        raise RuntimeError(f"native x87 runner answered {len(results)} of {len(cases)} cases")
    return results


def run_reference(case: X87Case) -> X87Result:
    """The same case on the reference (flat prot32, CR0.NE set as under Linux)."""
    cpu = make_cpu(case.code, "prot32")
    cpu.mem.write_bytes(DATA, case.data.ljust(DATA_SIZE, bytes(1))[:DATA_SIZE])
    cpu.set_reg("eax", case.eax)
    cpu.set_reg("ebx", DATA + EBX_OFFSET)
    cpu.set_reg("eflags", (case.eflags & STATUS) | 2)
    if hasattr(cpu, "cr0"):
        cpu.cr0 |= CR0_NE
    fpu = cpu.fpu
    fpu.control = case.state.control
    fpu.status_word = case.state.status
    for i in range(8):
        r = fpu.physical(i)
        fpu.regs[r] = case.state.st[i]
        fpu.empty[r] = case.state.empty[i]
    result = cpu.step()
    if result.exception is not None:
        signal = 8 if result.exception.vector == MF else -result.exception.vector - 1
        return X87Result(signal=signal)
    st = tuple(fpu.st(i) for i in range(8))
    empty = tuple(fpu.is_empty(i) for i in range(8))
    state = X87State(fpu.control, fpu.status_word, empty, st)
    data = cpu.mem.read_bytes(DATA, DATA_SIZE)
    return X87Result(state, fpu.tag_word, cpu.get_reg("eax"), cpu.flags.value, bytes(data))


def disagreements(cases: Sequence[X87Case]) -> List[str]:
    """One line per case where the reference and this CPU differ."""
    problems = []
    for case, native in zip(cases, run_native(cases)):
        mine, native = masked(run_reference(case), case), masked(native, case)
        if case.ulp:
            mine = _within_one_ulp(mine, native)
        if case.open_status:
            mine = _status_from(native, mine, case.open_status)
        if mine.compared() != native.compared():
            problems.append(f"{case.code.hex()} {case.state.describe()} eflags="
                            f"{case.eflags:x}: {_difference(mine, native)}")
    return problems


def masked(result: X87Result, case: X87Case) -> X87Result:
    """The result with the case's ignored data ranges zeroed."""
    if not case.ignore or result.state is None:
        return result
    data = bytearray(result.data)
    for start, end in case.ignore:
        data[start:end] = bytes(end - start)
    return X87Result(result.state, result.tag_word, result.eax, result.eflags, bytes(data))


def _within_one_ulp(mine: X87Result, native: X87Result) -> X87Result:
    """SDM Vol. 1, 8.3.10: the transcendentals are accurate to 1 ulp, so a register one
    unit away from the CPU's counts as the CPU's; C1 (rounded up) tells about the CPU's
    own inner value, which the SDM does not fix, so it is not compared. A register taken
    from the CPU takes its tag too, as the hardware computes it from the contents: one
    unit below the smallest normal is the largest denormal, tagged special (an Intel
    Xeon, family 6 model 167, rounds FYL2X of 0.5 and -2**-16382 down to it)."""
    if mine.state is None or native.state is None:
        return mine
    st = list(mine.state.st)
    tag_word = mine.tag_word
    top = mine.state.status >> 11 & 7
    status = (mine.state.status & ~0x200) | (native.state.status & 0x200)
    for i, (a, b) in enumerate(zip(mine.state.st, native.state.st)):
        if a != b and b in _neighbours(a) and not mine.state.empty[i]:
            st[i] = b
            shift = 2 * ((top + i) & 7)
            tag_word = tag_word & ~(3 << shift) | tag_of(b) << shift
    state = X87State(mine.state.control, status, mine.state.empty, tuple(st))
    return X87Result(state, tag_word, mine.eax, mine.eflags, mine.data)


def _neighbours(value: int) -> Tuple[int, int]:
    """The finite 80-bit values one unit above and below ``value`` in magnitude, also
    across a power of two (1.11..1 * 2**e and 1.0 * 2**(e + 1) are one unit apart)."""
    sign_exponent, sig = value >> 64, value & ((1 << 64) - 1)
    exponent = sign_exponent & 0x7FFF
    up = value + 1 if sig != (1 << 64) - 1 else (sign_exponent + 1) << 64 | 1 << 63
    down = value - 1
    if sig == 1 << 63 and exponent > 1:
        down = (sign_exponent - 1) << 64 | (1 << 64) - 1
    elif sig == 1 << 63 and exponent == 1:            # the largest denormal
        down = (sign_exponent - 1) << 64 | (1 << 63) - 1
    return up, down


def _status_from(native: X87Result, mine: X87Result, bits: int) -> X87Result:
    """The reference's result with the status bits ``bits`` taken from the CPU's (a
    case's known vendor difference, documented where the case is drawn)."""
    if mine.state is None or native.state is None:
        return mine
    status = (mine.state.status & ~bits) | (native.state.status & bits)
    state = X87State(mine.state.control, status, mine.state.empty, mine.state.st)
    return X87Result(state, mine.tag_word, mine.eax, mine.eflags, mine.data)


def _difference(mine: X87Result, native: X87Result) -> str:
    if mine.state is None or native.state is None:
        return f"reference signal {mine.signal}, CPU signal {native.signal}"
    names = ("cw", "sw", "tags", "st", "ax", "eflags", "data")
    parts = []
    for name, a, b in zip(names, mine.compared(), native.compared()):
        if a != b:
            if name == "st":
                a = [None if v is None else f"{v:020x}" for v in a]  # type: ignore[union-attr]
                b = [None if v is None else f"{v:020x}" for v in b]  # type: ignore[union-attr]
            elif name == "data":
                a = a.hex()[:64]  # type: ignore[union-attr]
                b = b.hex()[:64]  # type: ignore[union-attr]
            elif isinstance(a, int):
                a, b = hex(a), hex(b)  # type: ignore[arg-type]
            parts.append(f"{name} reference {a} CPU {b}")
    return "; ".join(parts)
