"""The host CPU as an oracle: run instructions natively in an i386 process.

Unicorn is an emulator too; where the SDM leaves a result open (SHLD r16 with a count
above 16, CF of SHL r8 by more than 8) or Unicorn is in doubt, the processor this runs on
is the tie-breaker (notes/unicorn-and-peers.md). ``native_i386.c`` is compiled once per
test session with ``gcc -m32`` (Debian: gcc-multilib, listed in scripts/apt-packages.txt);
without it these tests skip with that reason.

A case is register-only or addresses a 64-byte buffer through EBX, which points at its
middle: ``[EBX]`` is ``data[32]``.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest

from reference.flags import STATUS
from reference.tests.handmade import DATA, data_word, run

SOURCE = Path(__file__).with_name("native_i386.c")
DATA_SIZE = 64
EBX_OFFSET = 32
NativeCase = Tuple[bytes, int, int, int, int, bytes]  # code, eax, ecx, edx, eflags, data


@dataclass(frozen=True)
class NativeResult:
    """Registers, status flags and the data buffer after the instruction, or the signal
    (SIGFPE = 8 for #DE) that ended it."""

    eax: int = 0
    ecx: int = 0
    edx: int = 0
    eflags: int = 0
    data: bytes = b""
    signal: Optional[int] = None


@functools.cache
def built_program(source: Path) -> Tuple[Optional[Path], str]:
    """(path of ``source`` compiled as a 32-bit program, or None and why not); once per
    source. The native oracles of the reference's tests (this file's runner and the x87
    one) are built alike."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None, "gcc is not installed"
    out = Path(tempfile.mkdtemp(prefix="x86lab-native-")) / source.stem
    built = subprocess.run([gcc, "-m32", "-O1", "-fno-pie", "-no-pie", "-o", str(out),
                            str(source)], capture_output=True, text=True, timeout=120)
    if built.returncode != 0:
        return None, f"gcc -m32 failed (install gcc-multilib): {built.stderr.strip()[:200]}"
    return out, ""


def require_program(source: Path, what: str) -> Path:
    """The compiled ``source``; skips the calling test when this host cannot build it."""
    path, why = built_program(source)
    if path is None:
        pytest.skip(f"no native {what} oracle: {why}")
    return path


def require_native() -> Path:
    """This file's runner (integer instructions), built on first use."""
    return require_program(SOURCE, "i386")


def run_native(cases: Sequence[NativeCase]) -> List[NativeResult]:
    """Run every case in one process; one NativeResult per case, in order."""
    lines = []
    for code, eax, ecx, edx, eflags, data in cases:
        padded = data.ljust(DATA_SIZE, b"\0")[:DATA_SIZE]
        lines.append(f"{code.hex()} {eax:x} {ecx:x} {edx:x} {eflags:x} {padded.hex()}")
    done = subprocess.run([str(require_native())], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=120, check=True)
    results = []
    for line in done.stdout.splitlines():
        fields = line.split()
        if fields[0] == "fault":
            results.append(NativeResult(signal=int(fields[1])))
        else:
            eax, ecx, edx, eflags = (int(field, 16) for field in fields[:4])
            results.append(NativeResult(eax, ecx, edx, eflags & STATUS, bytes.fromhex(fields[4])))
    if len(results) != len(cases):
        raise RuntimeError(f"native runner answered {len(results)} of {len(cases)} cases")
    return results


def host_is_intel() -> bool:
    """Results the SDM leaves undefined (SHLD r16 by more than 16) are vendor-specific."""
    try:
        return "GenuineIntel" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def native_disagreements(cases: Sequence[NativeCase], undefined_dest: bool = False) -> List[str]:
    """Where the reference differs from the host CPU: EAX ECX EDX, the data buffer, a #DE
    (SIGFPE), and the status flags the table does not call undefined for the execution.
    A destination the table calls undefined is compared only with ``undefined_dest``."""
    problems = []
    for case, native in zip(cases, run_native(cases)):
        code, eax, ecx, edx, eflags, data = case
        cpu, result = run(code, data=data.ljust(DATA_SIZE, b"\0"), eax=eax, ecx=ecx, edx=edx,
                          ebx=DATA + EBX_OFFSET, eflags=eflags & STATUS)
        label = f"{code.hex()} eax={eax:#x} ecx={ecx:#x} edx={edx:#x} fl={eflags:#x}"
        if native.signal is not None or result.exception is not None:
            faulted = result.exception is not None and result.exception.vector == 0
            if not (native.signal == 8 and faulted):
                problems.append(f"{label}: native signal {native.signal}, "
                                f"reference {result.exception}")
            continue
        mask = STATUS & ~result.undefined_flags
        mine = (cpu.get_reg("eax"), cpu.get_reg("ecx"), cpu.get_reg("edx"),
                cpu.flags.value & mask, data_word(cpu, 0, DATA_SIZE))
        theirs = (native.eax, native.ecx, native.edx, native.eflags & mask,
                  int.from_bytes(native.data, "little"))
        if result.undefined_dest and not undefined_dest:  # which register: unknown here
            mine, theirs = mine[3:4], theirs[3:4]  # so only the defined flags count
        if mine != theirs:
            problems.append(f"{label}: reference {[hex(v) for v in mine[:4]]} "
                            f"native {[hex(v) for v in theirs[:4]]}"
                            + (" (data differs)" if mine[4:] != theirs[4:] else ""))
    return problems
