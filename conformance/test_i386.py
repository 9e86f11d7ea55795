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
import os
import subprocess
from pathlib import Path

from conformance.sources import SourceError, extract, source_version
from x86lab.cache import cache_file

PACKAGE = "qemu"
FOLDER = "tests/tcg/i386"
CFLAGS = ("-m32", "-static", "-O0", "-g", "-fno-strict-aliasing", "-fno-pie", "-no-pie")
SOURCES = ("test-i386.c", "test-i386-code16.S", "test-i386-vm86.S")
# Ours, linked in: stdout line-buffered, so a program killed midway loses no printed line.
LINE_BUFFERED = Path(__file__).parent / "guest" / "linebuf.c"


def build() -> Path:
    """The test-i386 binary, built once per qemu source version."""
    version = source_version(PACKAGE)
    key = hashlib.sha256((version + " ".join(CFLAGS)).encode() +
                         LINE_BUFFERED.read_bytes()).hexdigest()[:16]
    binary = cache_file("conformance", "bin", f"test-i386-{key}")
    if binary.exists():
        return binary
    source = extract(PACKAGE, FOLDER)
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")  # concurrent builds
    done = subprocess.run(["gcc", *CFLAGS, "-o", str(partial), *SOURCES, str(LINE_BUFFERED), "-lm"],
                          cwd=source,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SourceError(f"building test-i386 failed: {done.stderr.strip()[-600:]}")
    partial.replace(binary)
    return binary


def run_natively(binary: Path, timeout: float = 120.0) -> str:
    """The expected output: the binary on this machine's CPU."""
    done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SourceError(f"test-i386 failed natively (status {done.returncode}); "
                          "the expected output is unusable")
    return done.stdout


GUEST_COMMAND = "./test-i386 > /tmp/test-i386.out 2>&1; echo status=$? >> /tmp/test-i386.out"
