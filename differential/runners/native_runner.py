"""Run one prot32 case on the host CPU, in an i386 process (``differential/native/step32.c``,
built with ``gcc -m32 -static`` into the cache on first use): the tie-breaker when Unicorn
and the reference disagree.

Limits, each refused with ``NativeUnavailable`` rather than guessed around: real16 cases;
pages the process cannot place (below ``mmap_min_addr``, over its own image or stack, or
above the 3 GiB user limit); GS/FS overrides (Linux gives them a TLS base, the case says 0);
system calls (INT 80h, SYSENTER), whose effects are the kernel's. An access to a page the
case lacks may land on one of the process's own mappings, so exceptions of kind
"unmapped" are only reported when the host actually faulted.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Dict, Optional

from differential.encoding import is_rep_string, split_prefixes
from ground.case import GPRS, PAGE_SIZE, Case, Exc, Outcome

SOURCE = Path(__file__).resolve().parent.parent / "native" / "step32.c"
HEADER = SOURCE.with_name("sigstep.h")
REG_ORDER = (*GPRS, "eip", "eflags")
SINGLE_STEP, BREAKPOINT, OVERFLOW, PAGE_FAULT = 1, 3, 4, 14


class NativeUnavailable(RuntimeError):
    """This case (or this host) cannot be run natively; the message says why."""


def build(cache: Optional[Path] = None) -> Path:
    """Compile step32.c once per source hash; returns the binary's path."""
    if shutil.which("gcc") is None:
        raise NativeUnavailable("gcc not found (apt-get install gcc-multilib)")
    from ground.cache import cache_dir

    # The header it includes (shared with the conformance stepper) is part of the source.
    digest = hashlib.sha256(SOURCE.read_bytes() + HEADER.read_bytes()).hexdigest()[:12]
    binary = (cache or cache_dir("native")) / f"step32-{digest}"
    if not binary.exists():
        tmp = binary.with_suffix(".tmp")
        result = subprocess.run(["gcc", "-m32", "-static", "-O1", "-Wall", "-o", str(tmp),
                                 str(SOURCE)], capture_output=True, text=True)
        if result.returncode:
            raise NativeUnavailable(f"gcc -m32 failed: {result.stderr.strip()[:200]}")
        tmp.replace(binary)
    return binary


def _refuse(case: Case) -> None:
    if case.mode != "prot32":
        raise NativeUnavailable("only prot32 cases run natively (Linux user mode is flat)")
    prefixes, body = split_prefixes(case.code)
    if 0x64 in prefixes or 0x65 in prefixes:
        raise NativeUnavailable("FS/GS overrides: Linux gives GS a TLS base, the case 0")
    if body[:2] in (b"\xcd\x80", b"\x0f\x34"):
        raise NativeUnavailable("a system call: its effects would be the kernel's")


class NativeRunner:
    """``NativeRunner().run(case) -> Outcome`` on the host CPU (prot32 only)."""

    name = "native"

    def __init__(self) -> None:
        self.binary = build()

    def run(self, case: Case) -> Outcome:
        _refuse(case)
        bases = sorted(case.memory)
        request = struct.pack("<I", len(bases))
        for base in bases:
            request += struct.pack("<I", base) + bytes(case.memory[base])
        request += struct.pack("<10I", *(case.regs[name] for name in REG_ORDER))
        request += struct.pack("<I", int(is_rep_string(case.code)))
        done = subprocess.run([str(self.binary)], input=request, capture_output=True,
                              timeout=10)
        if done.returncode or len(done.stdout) < 4:
            raise NativeUnavailable(f"step32 failed: {done.stderr.decode().strip()[:200]}")
        if struct.unpack_from("<I", done.stdout)[0] == 1:
            raise NativeUnavailable("a page of the case cannot be placed in an i386 process")
        _status, trapno, err, *values = struct.unpack_from("<13I", done.stdout)
        regs = dict(zip(REG_ORDER, values))
        memory: Dict[int, bytes] = {}
        offset = 13 * 4
        for base in bases:
            memory[base] = done.stdout[offset:offset + PAGE_SIZE]
            offset += PAGE_SIZE
        return Outcome(regs=regs, memory=memory, exception=_exception(trapno, err))


def _exception(trapno: int, err: int) -> Optional[Exc]:
    if trapno == SINGLE_STEP:
        return None
    if trapno in (BREAKPOINT, OVERFLOW):
        return Exc(trapno, "trap")
    if trapno == PAGE_FAULT:
        return Exc(-1, "unmapped")
    return Exc(trapno, "fault", err if trapno in (10, 11, 12, 13, 17) else None)
