"""The one driver of the native stepper (``differential/native/stepper.c``): build it,
feed it, read it, and run a case on this machine's CPU.

One static i386 program single-steps vectors wherever Linux runs: natively here (the real
CPU as an oracle) and inside v86, QEMU and Bochs guests. Two callers share this driver:

- the conformance suite (``conformance/native.py``, ``conformance/guest_vectors.py``),
  which sends batches of vectors and classifies what user mode cannot express;
- the native oracle of ``x86lab vectors generate --oracle native``
  (``differential/native_vectors.py``), through ``NativeRunner().run(case) -> Outcome``,
  the tie-breaker when Unicorn and the reference disagree.

The stepper loads the case's registers through sigreturn with the data segments flat (base
0, not glibc's TLS base), stops the instruction with the single-step trap (or a sentinel
INT3 on an engine that ignores TF) and reports the hardware vector of any exception; this
module turns its lines into ``Outcome`` records in the conventions of ``ground.case``.
A program that dies on a vector is restarted after it, so one bad vector costs one
result, not the run.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from differential.encoding import is_rep_string, split_prefixes
from ground.cache import BuildFailed, cache_file, compile_into
from ground.case import GPRS, PAGE_SIZE, Case, Exc, Outcome

SOURCE = Path(__file__).resolve().parent.parent / "native" / "stepper.c"
HEADER = SOURCE.with_name("sigstep.h")  # the sigreturn state loading it includes
CFLAGS = ("-m32", "-static", "-O1", "-fno-stack-protector", "-Wall", "-Wextra",
          f"-I{HEADER.parent}")
REG_ORDER = (*GPRS, "eip", "eflags")
TF, RF = 0x100, 0x10000
# Vectors whose hardware exception carries an error code (SDM Vol. 3A, 6.13); Linux
# reports err=0 for the others, which is no error code at all.
ERROR_CODE_VECTORS = frozenset((8, 10, 11, 12, 13, 14, 17))
PAGE_FAULT = 14
GP = 13
FLAG_REP, FLAG_SENTINEL, FLAG_EXPECTS_EXCEPTION = 1, 2, 4  # the record flags in stepper.c
STOPS = {"S": "tf", "T": "sentinel", "X": "exception"}
MAX_RESTARTS = 50
MAX_PAGES = 16  # MAX_PAGES in stepper.c


class StepperError(RuntimeError):
    """The stepper could not be built, or printed something we cannot read."""


class NativeUnavailable(StepperError):
    """This case (or this host) cannot be run natively; the message says why."""


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
    """A static i386 program (the stepper by default, or a conformance guest program)
    compiled once per source, shared header and flags; built into the cache."""
    source = source_path.read_bytes() + HEADER.read_bytes()
    key = hashlib.sha256(source + " ".join(CFLAGS).encode()).hexdigest()[:16]
    target = cache_file("native", "bin", f"{source_path.stem}-{key}")
    try:
        return compile_into(target, lambda out: [compiler, *CFLAGS, "-o", out, source_path])
    except BuildFailed as failed:
        if not failed.started:
            raise StepperError(f"{compiler} could not run ({failed.output}); install "
                               "gcc-multilib (scripts/setup.sh)") from failed
        raise StepperError(f"building {source_path.name} failed (is gcc-multilib installed?):"
                           f"\n{failed.output[-800:]}") from failed


def int_number(code: bytes) -> Optional[int]:
    """n for an ``INT n`` (CD ib) instruction, else None."""
    _, rest = split_prefixes(code)
    return rest[1] if len(rest) >= 2 and rest[0] == 0xCD else None


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
    number = int_number(case.code)
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


def run_natively(data: bytes, binary: Optional[Path] = None, timeout: float = 600.0,
                 stop: str = "") -> str:
    """The stepper's output for input ``data``, run as a child process of ours;
    ``stop="sentinel"`` makes it stop vectors by their sentinels instead of TF."""
    env = dict(os.environ, X86LAB_STEPPER_STOP=stop) if stop else None
    binary = binary or build()
    with tempfile.TemporaryDirectory(prefix="x86lab-stepper-") as folder:
        path = Path(folder) / "vectors.bin"
        path.write_bytes(data)
        lines: List[str] = []
        for _ in range(MAX_RESTARTS):
            done = subprocess.run([str(binary), str(path), str(len(lines))],
                                  capture_output=True, text=True, timeout=timeout, env=env)
            lines += done.stdout.splitlines()
            if done.returncode == 0:
                break
            if done.returncode == 2 or done.returncode > 0 and done.returncode != 3:
                raise StepperError(f"stepper failed: {done.stderr.strip()[:300]}")
            lines.append(f"{len(lines)} C signal-{-done.returncode}")
    return "\n".join(lines) + "\n"


def _refuse(case: Case) -> None:
    """The oracle's limits, refused rather than guessed around: real mode (Linux user mode
    is flat prot32); more pages than the stepper holds; FS/GS overrides (the stepper makes
    FS and GS flat, but the oracle's corpus has never held them: admitting them is a
    choice for its next regeneration); system calls (INT 80h, SYSENTER), whose effects
    are the kernel's."""
    if case.mode != "prot32":
        raise NativeUnavailable("only prot32 cases run natively (Linux user mode is flat)")
    if len(case.memory) > MAX_PAGES:
        raise NativeUnavailable(f"more than {MAX_PAGES} pages (the stepper's limit)")
    prefixes, body = split_prefixes(case.code)
    if 0x64 in prefixes or 0x65 in prefixes:
        raise NativeUnavailable("FS/GS overrides are left out of the native oracle")
    if body[:2] in (b"\xcd\x80", b"\x0f\x34"):
        raise NativeUnavailable("a system call: its effects would be the kernel's")


class NativeRunner:
    """``NativeRunner().run(case) -> Outcome`` on the host CPU (prot32 only), one stepper
    process per case. EFLAGS.TF (the single-step's own) and RF (the kernel's) are cleared
    from the result: user mode cannot observe them. An access to a page the case lacks may
    land on one of the process's own mappings, so "unmapped" is reported only when the
    host actually faulted."""

    name = "native"

    def __init__(self) -> None:
        self.binary = build()

    def run(self, case: Case) -> Outcome:
        _refuse(case)
        [result] = parse_output([case], run_natively(encode([case]), self.binary, timeout=10))
        if result.status != "ran" or result.outcome is None:
            raise NativeUnavailable(f"the stepper did not run it ({result.status}: "
                                    f"{result.reason})")
        regs = {**result.outcome.regs, "eflags": result.outcome.regs["eflags"] & ~(TF | RF)}
        return replace(result.outcome, regs=regs)
