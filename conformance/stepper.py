"""The stepper guest program (``conformance/guest/stepper.c``): build it, feed it, read it.

One static i386 binary runs the vectors everywhere Linux runs: natively on this machine
(the real CPU as an oracle) and inside v86 and QEMU guests. This module is the host side:
it compiles the program (cached by source hash), classifies which vectors user mode can
express, encodes them into the binary input the program reads, and turns its output
lines back into ``Outcome`` records in the conventions of ``ground.case``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from differential.encoding import is_rep_string, split_prefixes
from ground.cache import cache_file
from ground.case import GPRS, PAGE_SIZE, Case, Exc, Outcome

SOURCE = Path(__file__).parent / "guest" / "stepper.c"
# The sigreturn state loading it shares with differential/native/step32.c.
HEADER = Path(__file__).resolve().parent.parent / "differential" / "native" / "sigstep.h"
CFLAGS = ("-m32", "-static", "-O1", "-fno-stack-protector", "-Wall", "-Wextra",
          f"-I{HEADER.parent}")
REG_ORDER = (*GPRS, "eip", "eflags")
TF, RF, IF, IOPL = 0x100, 0x10000, 0x200, 0x3000
# User mode cannot observe TF (our own single-step sets it) or RF (the kernel owns it).
USER_UNOBSERVABLE = TF | RF
# Vectors whose hardware exception carries an error code (SDM Vol. 3A, 6.13); Linux
# reports err=0 for the others, which is no error code at all.
ERROR_CODE_VECTORS = frozenset((8, 10, 11, 12, 13, 14, 17))
PAGE_FAULT = 14
GP = 13
FLAG_REP, FLAG_SENTINEL, FLAG_EXPECTS_EXCEPTION = 1, 2, 4  # the record flags in stepper.c
STOPS = {"S": "tf", "T": "sentinel", "X": "exception"}

# Forms user mode cannot express, and why (classified, never failed).
TF_FORMS = ("PUSHF",)  # pushes EFLAGS with the TF our single-step set
SELECTOR_FORMS = ("PUSH_CS", "PUSH_DS", "PUSH_ES", "PUSH_FS", "PUSH_GS", "PUSH_SS",
                  "POP_DS", "POP_ES", "POP_FS", "POP_GS", "POP_SS", "MOV_Evw_Sw", "MOV_Sw_Ew")
PRIVILEGED_FORMS = ("HLT", "CLI", "STI", "IN_AL_Ib", "IN_eAX_Ib", "OUT_Ib_AL", "OUT_Ib_eAX",
                    "IN_AL_DX", "IN_eAX_DX", "OUT_DX_AL", "OUT_DX_eAX", "INS_Yb_DX",
                    "INS_Yz_DX", "OUTS_DX_Xb", "OUTS_DX_Xz")


class StepperError(RuntimeError):
    """The stepper could not be built, or printed something we cannot read."""


@dataclass(frozen=True)
class StepResult:
    """What one engine did with one vector: ``status`` is ``ran``, ``inexpressible``
    (with ``reason``) or ``crashed`` (the program died on it; ``reason`` names how).
    ``stop`` says what ended a run: ``tf`` (single-step trap), ``sentinel`` (the INT3
    after it, on engines that ignore TF) or ``exception``."""

    status: str
    outcome: Optional[Outcome] = None
    reason: str = ""
    stop: str = ""


@dataclass(frozen=True)
class Stop:
    """How a vector can stop where TF does not work: ``sentinel``, the address where an
    INT3 may go (None: nowhere safe), and whether the vector expects an exception, which
    stops it anyway."""

    sentinel: Optional[int] = None
    expects_exception: bool = False


def build(compiler: str = "gcc", source_path: Path = SOURCE) -> Path:
    """A guest program (the stepper by default, or another file in ``guest/``) compiled
    static for i386, rebuilt only when its source, the shared header or the flags change."""
    source = source_path.read_bytes() + HEADER.read_bytes()
    key = hashlib.sha256(source + " ".join(CFLAGS).encode()).hexdigest()[:16]
    target = cache_file("conformance", "bin", f"{source_path.stem}-{key}")
    if target.exists():
        return target
    if shutil.which(compiler) is None:
        raise StepperError(f"{compiler} not found; install gcc-multilib (scripts/setup.sh)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # concurrent builds
    done = subprocess.run([compiler, *CFLAGS, "-o", str(partial), str(source_path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise StepperError(f"building {source_path.name} failed (is gcc-multilib installed?):"
                           f"\n{done.stderr.strip()[-800:]}")
    partial.replace(target)
    return target


def _int_number(code: bytes) -> Optional[int]:
    """n for an ``INT n`` (CD ib) instruction, else None."""
    _, rest = split_prefixes(code)
    return rest[1] if len(rest) >= 2 and rest[0] == 0xCD else None


def inexpressible_reason(case: Case) -> str:
    """Why user mode cannot run ``case`` as the vector means it ("" when it can)."""
    if case.mode != "prot32":
        return "real-mode vector (needs vm86)"
    form = case.form or ""
    if form in SELECTOR_FORMS:
        return "reads or loads a selector (user selectors differ from the vector's)"
    if form in TF_FORMS:
        return "pushes EFLAGS.TF, which the single-step sets"
    if form in PRIVILEGED_FORMS:
        return "privileged at CPL3 (raises #GP in user mode)"
    if _int_number(case.code) == 0x80:
        return "INT 0x80 is Linux's system call gate"
    if case.regs.get("eflags", 0) & (IF | IOPL) != IF:
        return "IF/IOPL differ from user mode's"
    return ""


def comparable_case(case: Case) -> Case:
    """The case with the EFLAGS bits user mode cannot observe added to the mask (TF, RF;
    for POPF also IF and IOPL, which POPF silently keeps at CPL3)."""
    extra = USER_UNOBSERVABLE | (IF | IOPL if (case.form or "").startswith("POPF") else 0)
    return replace(case, undefined_flags=case.undefined_flags | extra)


def _fill_and_pairs(data: bytes) -> Tuple[int, List[int]]:
    fill = Counter(data).most_common(1)[0][0]
    return fill, [offset << 8 | byte for offset, byte in enumerate(data) if byte != fill]


def encode(cases: Sequence[Case], stops: Optional[Sequence[Stop]] = None) -> bytes:
    """The stepper's binary input for ``cases`` (layout in the C file's header);
    ``stops`` matter only on an engine where TF does not stop an instruction."""
    out = bytearray()
    for case, stop in zip(cases, stops or [Stop()] * len(cases)):
        flags = (FLAG_REP if is_rep_string(case.code) else 0) | \
            (FLAG_SENTINEL if stop.sentinel is not None else 0) | \
            (FLAG_EXPECTS_EXCEPTION if stop.expects_exception else 0)
        out += struct.pack("<II", flags, stop.sentinel or 0)
        out += struct.pack("<10I", *(case.regs[name] for name in REG_ORDER))
        out += struct.pack("<I", len(case.memory))
        for base in sorted(case.memory):
            fill, pairs = _fill_and_pairs(case.memory[base])
            out += struct.pack(f"<3I{len(pairs)}I", base, fill, len(pairs), *pairs)
    return bytes(out)


def _exception(case: Case, trapno: int, err: int, regs: Dict[str, int]) -> Exc:
    """The hardware exception as the vectors name it (see the mapping in stepper.c)."""
    if trapno == PAGE_FAULT:
        return Exc(-1, "unmapped")
    number = _int_number(case.code)
    if trapno == GP and number is not None and err == (number << 3 | 2):
        # INT n through a DPL0 gate: #GP at the instruction. At CPL0 (the vectors' world)
        # the gate is taken: a trap to vector n, EIP after the instruction.
        regs["eip"] = (case.regs["eip"] + len(case.code)) & 0xFFFFFFFF
        return Exc(number, "trap")
    kind = "trap" if trapno in (3, 4) else "fault"
    return Exc(trapno, kind, err if trapno in ERROR_CODE_VECTORS else None)


def _memory_after(case: Case, changes: Sequence[str]) -> Dict[int, bytes]:
    pages = {base: bytearray(data) for base, data in case.memory.items()}
    for change in changes:
        address_text, _, hex_bytes = change.partition(":")
        address = int(address_text, 16)
        for i, byte in enumerate(bytes.fromhex(hex_bytes)):
            linear = address + i
            pages[linear - linear % PAGE_SIZE][linear % PAGE_SIZE] = byte
    return {base: bytes(data) for base, data in pages.items()}


def parse_line(case: Case, fields: Sequence[str]) -> StepResult:
    """One output line (already split, index removed) -> the engine's result."""
    kind = fields[0]
    if kind == "N":
        return StepResult("inexpressible", reason=" ".join(fields[1:]))
    if kind == "C":
        return StepResult("crashed", reason=" ".join(fields[1:]))
    if kind not in STOPS or len(fields) < 13:
        raise StepperError(f"unreadable stepper line: {' '.join(fields)[:120]}")
    trapno, err = int(fields[1]), int(fields[2])
    regs = {name: int(value, 16) for name, value in zip(REG_ORDER, fields[3:13])}
    exception = _exception(case, trapno, err, regs) if kind == "X" else None
    return StepResult("ran", Outcome(regs, _memory_after(case, fields[13:]), exception),
                      stop=STOPS[kind])


def parse_output(cases: Sequence[Case], text: str) -> List[StepResult]:
    """Results in the order of ``cases``; a vector the output never reached is
    ``crashed`` with the reason "not reached"."""
    found: Dict[int, StepResult] = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields or not fields[0].isdigit():
            continue
        index = int(fields[0])
        if index < len(cases) and len(fields) > 1:
            try:
                found[index] = parse_line(cases[index], fields[1:])
            except (ValueError, KeyError, StepperError):
                # Cut short or interleaved on a console when the emulator died.
                found[index] = StepResult("crashed", reason="garbled output line")
    return [found.get(i, StepResult("crashed", reason="not reached"))
            for i in range(len(cases))]
