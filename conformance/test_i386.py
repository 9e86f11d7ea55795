"""QEMU's ``tests/tcg/i386/test-i386``: integer, x87, BCD, string, segment, exception,
single-step and self-modifying-code tests, each printing its results.

Built from the ``qemu`` Debian source package with QEMU's own flags for it
(tests/tcg/Makefile.target and i386/Makefile.target: ``-O0 -g -fno-strict-aliasing``,
``-fno-pie``) plus ``-m32 -static``. ``-O0`` matters: its inline asm lacks early-clobber
markers, so optimised builds compute different (wrong) results. The machine's CPU running
the binary gives the expected output.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Dict

from conformance import instruction_map
from conformance.sources import SourceError, extract, source_version
from ground.cache import BuildFailed, cache_file, compile_into

PACKAGE = "qemu"
FOLDER = "tests/tcg/i386"
CFLAGS = ("-m32", "-static", "-O0", "-g", "-fno-strict-aliasing", "-fno-pie", "-no-pie")
SOURCES = ("test-i386.c", "test-i386-code16.S", "test-i386-vm86.S")
# Ours, linked in: stdout line-buffered, so a program killed midway loses no printed line;
# and a SIGILL stepped over (recorded), so one missing instruction hides nothing after it.
LINE_BUFFERED = Path(__file__).parent / "guest" / "linebuf.c"
SKIP_ILLEGAL = Path(__file__).parent / "guest" / "skipill.c"
LINKED_IN = (LINE_BUFFERED, SKIP_ILLEGAL)


def build() -> Path:
    """The test-i386 binary, built once per qemu source version."""
    version = source_version(PACKAGE)
    key = hashlib.sha256((version + " ".join(CFLAGS)).encode() +
                         b"".join(path.read_bytes() for path in LINKED_IN)).hexdigest()[:16]
    binary = cache_file("conformance", "bin", f"test-i386-{key}")
    if binary.exists():
        instruction_map.write_map(binary)
        return binary
    source = extract(PACKAGE, FOLDER)
    try:
        compile_into(binary, lambda out: ["gcc", *CFLAGS, "-o", out, *SOURCES, *LINKED_IN,
                                          "-lm"], cwd=source)
    except BuildFailed as failed:
        raise SourceError(f"building test-i386 failed: {failed.output[-600:]}") from failed
    instruction_map.write_map(binary)
    return binary


def run_natively(binary: Path, timeout: float = 120.0) -> str:
    """The expected output: the binary on this machine's CPU."""
    done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SourceError(f"test-i386 failed natively (status {done.returncode}); "
                          "the expected output is unusable")
    return done.stdout


def guest_files() -> Dict[str, bytes]:
    """The program and its instruction map, for the guest's overlay."""
    binary = build()
    return {"test-i386": binary.read_bytes(),
            "test-i386.insnmap": instruction_map.write_map(binary).read_bytes()}


SKIP_LOG = "/tmp/test-i386.skipped"
GUEST_COMMAND = (f": > {SKIP_LOG}; X86LAB_INSN_MAP=./test-i386.insnmap "
                 f"X86LAB_SKIP_LOG={SKIP_LOG} ./test-i386 > /tmp/test-i386.out 2>&1; "
                 "echo status=$? >> /tmp/test-i386.out")
