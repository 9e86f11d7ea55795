"""Linux's own x86 selftests (``tools/testing/selftests/x86``), 32-bit and static.

The source is the ``linux-source-6.1`` tarball the image builder already uses
(``images.kernel.tiny``): only the selftests folder and the one kernel header a test
includes are extracted, once per installed version. Each 32-bit test of the selftests
Makefile is built alone with its flags (``CFLAGS`` there, ``-m32`` and the extra sources
its rules name) plus ``-static``, since the guest has no 32-bit C library; a test that
does not build is listed with the compiler's reason, never dropped.

The tests print ``[RUN]``, ``[OK]``, ``[FAIL]``, ``[SKIP]`` lines and exit non-zero on a
failure; ``SCRIPT`` runs each under BusyBox ``timeout`` and brackets its output with
markers, the same way in a guest and on this machine (``run_natively``).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

from conformance.sources import SourceError, extract_member
from differential.cpu_identity import this_cpu
from ground.cache import BuildFailed, cache_dir, cache_file, compile_into

FOLDER = "tools/testing/selftests/x86"
HEADERS = ("arch/x86/include/asm/desc_defs.h",)  # sigreturn.c includes it by a ../ path
# The selftests Makefile's 32-bit targets (TARGETS_C_BOTHBITS, _32BIT_ONLY, _32BIT_NEEDED).
TESTS = ("single_step_syscall", "sysret_ss_attrs", "syscall_nt", "test_mremap_vdso",
         "check_initial_reg_state", "sigreturn", "iopl", "ioperm", "test_vsyscall",
         "mov_ss_trap", "sigtrap_loop", "syscall_arg_fault", "fsgsbase_restore",
         "sigaltstack", "entry_from_vm86", "test_syscall_vdso", "unwind_vdso", "test_FCMOV",
         "test_FCOMI", "test_FISTTP", "vdso_restorer", "ldt_gdt", "ptrace_syscall")
# Its CFLAGS (-O2 -g -std=gnu99 -pthread -Wall, -no-pie where the compiler has it), and
# -DCAN_BUILD_32/-DCAN_BUILD_64 as it defines them on a multilib x86-64 host; -static ours.
CFLAGS = ("-m32", "-static", "-O2", "-g", "-std=gnu99", "-pthread", "-Wall", "-no-pie",
          "-DCAN_BUILD_32", "-DCAN_BUILD_64")
LIBRARIES = ("-lrt", "-ldl", "-lm")
LINE_BUFFERED = Path(__file__).parent / "guest" / "linebuf.c"
"""Linked in (as into test-i386): stdout line-buffered into a file, so a test that forks
does not print its parent's pending lines twice (the child's exit flushed the inherited
buffer, and where that landed depended on timing) and a killed test loses no line."""
EXTRA = {"ptrace_syscall": ("raw_syscall_helper_32.S",),
         "test_syscall_vdso": ("thunks_32.S",),
         "check_initial_reg_state": ("-Wl,-ereal_start",)}
"""Per-test additions from the Makefile's own rules (extra sources, a custom entry)."""
LIMIT_SECONDS = 60
"""Each test's time limit in a guest and natively (they take under half a second here)."""


def source_version() -> str:
    from images import debs
    from images.kernel.tiny import SOURCE_PACKAGE

    return debs.installed_version(SOURCE_PACKAGE)


def sources() -> Path:
    """The selftests folder, extracted once per linux-source version (about 20 s: the
    tarball is one xz stream)."""
    from images.kernel.tiny import SOURCE_TARBALL

    root = cache_dir("conformance") / "extracted" / f"linux-source-{source_version()}"
    target = root / FOLDER
    if (root / "complete").exists():
        return target
    if not SOURCE_TARBALL.exists():
        raise SourceError(f"{SOURCE_TARBALL} is missing; apt-get install linux-source-6.1")
    with tarfile.open(SOURCE_TARBALL) as archive:  # one pass: extract while reading
        for member in archive:
            inner = member.name.split("/", 1)[-1]
            if inner.startswith(f"{FOLDER}/") or inner in HEADERS:
                member.name = inner
                extract_member(archive, member, root)
    if not target.is_dir():
        raise SourceError(f"{SOURCE_TARBALL.name} has no {FOLDER}/")
    (root / "complete").write_text("")
    return target


@dataclass
class Build:
    """The built tests (name -> binary) and those that did not build (name -> reason)."""

    binaries: Dict[str, Path] = field(default_factory=dict)
    failed: Dict[str, str] = field(default_factory=dict)
    command: str = "gcc " + " ".join(CFLAGS)


def build_key() -> str:
    recipe = repr((source_version(), CFLAGS, LIBRARIES, sorted(EXTRA.items()), TESTS))
    return hashlib.sha256(recipe.encode() + LINE_BUFFERED.read_bytes()).hexdigest()[:16]


def _compile(name: str, source: Path, folder: Path) -> Tuple[Path, str]:
    """One test's binary (cached), or the compiler's reason it did not build."""
    binary = folder / f"{name}_32"
    reason = folder / f"{name}_32.failed"
    if binary.exists():
        return binary, ""
    if reason.exists():
        return binary, reason.read_text("utf-8")
    try:
        compile_into(binary, lambda out: ["gcc", *CFLAGS, "-o", out, f"{name}.c", "helpers.h",
                                          *EXTRA.get(name, ()), LINE_BUFFERED, *LIBRARIES],
                     cwd=source)
    except BuildFailed as failed:
        if not failed.started:  # no compiler here: not the test's failure, nothing kept
            raise SourceError(f"gcc could not run: {failed.output}") from failed
        errors = [line for line in failed.output.splitlines() if "error" in line]
        text = (errors[0] if errors else failed.output[-300:]).strip()
        reason.write_text(text, "utf-8")
        return binary, text
    return binary, ""


def build() -> Build:
    """Every 32-bit test, each built alone, once per source version and flags."""
    source = sources()
    folder = cache_file("conformance", "bin", f"selftests-{build_key()}", "x")
    result = Build()
    for name in TESTS:
        binary, reason = _compile(name, source, folder.parent)
        if reason:
            result.failed[name] = reason
        else:
            result.binaries[name] = binary
    return result


# Arguments: folder of the binaries, output file, time limit per test, tests.
SCRIPT = """#!/bin/sh
dir=$1 out=$2 limit=$3; shift 3
: > "$out"
for test in "$@"; do
    echo "selftest-begin=$test" >> "$out"
    t0=$(cut -d' ' -f1 /proc/uptime)
    timeout "$limit" "$dir/${test}_32" < /dev/null >> "$out" 2>&1 && rc=0 || rc=$?
    t1=$(cut -d' ' -f1 /proc/uptime)
    echo "" >> "$out"
    echo "selftest-end=$test $rc $t0 $t1" >> "$out"
done
"""
"""Each test under ``timeout`` (BusyBox's answers 143 when it kills one), its output
between markers with its exit status and start and end times (/proc/uptime)."""
GUEST_OUT = "/tmp/selftests.out"


def guest_files(built: Build) -> Dict[str, bytes]:
    files = {f"selftests/{path.name}": path.read_bytes() for path in built.binaries.values()}
    files["selftests/run.sh"] = SCRIPT.encode()
    return files


def guest_command(folder: str, tests: Sequence[str], limit: int = LIMIT_SECONDS) -> str:
    return (f"sh {folder}/selftests/run.sh {folder}/selftests {GUEST_OUT} {limit} "
            + " ".join(tests))


def run_natively(built: Build, limit: int = LIMIT_SECONDS, round_: int = 1) -> str:
    """This CPU's output, cached by binaries, limit and CPU. Plainly, as the user running
    x86lab (root here: iopl and ioperm need it), on CPU 0 only as the one-CPU guests; the
    script runs under the image's busybox, so ``timeout`` and ``sh`` are the guest's.
    ``round_`` numbers a repeated run (two runs show which lines vary by themselves)."""
    from conformance.busybox_suite import busybox_binary

    busybox = busybox_binary()
    names = sorted(built.binaries)
    digest = hashlib.sha256("\0".join([this_cpu().describe(), str(limit), str(os.getuid()),
                                       str(round_), *names]).encode() +
                            b"".join(hashlib.sha256(built.binaries[n].read_bytes()).digest()
                                     for n in names)).hexdigest()[:16]
    cached = cache_file("conformance", "expected", f"selftests-{digest}.txt")
    if cached.exists():
        return cached.read_text("utf-8")
    with tempfile.TemporaryDirectory(prefix="x86lab-selftests-") as scratch:
        script = Path(scratch) / "run.sh"
        script.write_text(SCRIPT.replace("timeout ", f"{busybox} timeout ")
                          .replace("cut ", f"{busybox} cut "), "utf-8")
        out = Path(scratch) / "selftests.out"
        folder = next(iter(built.binaries.values())).parent
        subprocess.run(["taskset", "-c", "0", str(busybox), "sh", str(script), str(folder),
                        str(out), str(limit), *names], capture_output=True, text=True,
                       timeout=limit * len(names) + 60, stdin=subprocess.DEVNULL)
        if not out.exists():
            raise SourceError("the selftests did not run natively")
        text = out.read_text("utf-8", "replace")
    cached.write_text(text, "utf-8")
    return text


VERDICT = re.compile(r"^\[(OK|FAIL|SKIP)\]")
SECTION = re.compile(r"^\[RUN\]\s*(.*)")
ADDRESS = re.compile(r"0x(?:0x)?[0-9a-f]{7,}\b")
"""Addresses the tests print in lowercase hex (``loaded at 0x0xf7f25000``); descriptor
values (``AR 0x00C0FB00``) are uppercase and stay."""
NUMBER = re.compile(r"\d+")
TLS_SLOT = re.compile(r"GDT entry \d+")
"""ldt_gdt's TLS entry: the GDT slot the kernel's set_thread_area hands out (13 under a
64-bit kernel, 7 under a 32-bit one; its own ``[NOTE]`` says which), masked like an
address."""
SELECTOR = re.compile(r"\((?:[0-9a-f]{1,4})(?=[,)])")
"""Segment selectors in ``[RUN]`` lines (``32-bit CS (23), bogus SS (2b, GDT)``): the
kernel's GDT layout (0x23 under a 64-bit kernel, 0x73 under a 32-bit one), not the CPU's
doing; masked where sections are matched and named."""


def section_name(section: str) -> str:
    return SELECTOR.sub("(…", section)


@dataclass
class TestRun:
    """One test's run: its exit status (143: cut off by the limit; -1: never finished),
    seconds, verdict lines (addresses masked) each with the ``[RUN]`` line it follows
    (its section), and the whole output."""

    status: int = -1
    seconds: float = 0.0
    verdicts: List[str] = field(default_factory=list)
    sections: List[str] = field(default_factory=list)
    output: str = ""


def parse_run(text: str) -> Dict[str, TestRun]:
    runs: Dict[str, TestRun] = {}
    name = section = ""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key == "selftest-begin":
            name, section = value, ""
            runs[name] = TestRun()
        elif sep and key == "selftest-end" and name:
            test, status, start, end = value.split()
            run = runs[test]
            run.status, run.seconds = int(status), round(float(end) - float(start), 2)
            name = ""
        elif name:
            run = runs[name]
            run.output += line + "\n"
            heading = SECTION.match(line)
            if heading:
                section = ADDRESS.sub("0x…", heading.group(1).strip())
            elif VERDICT.match(line):
                run.verdicts.append(TLS_SLOT.sub("GDT entry (TLS)",
                                                 ADDRESS.sub("0x…", line.rstrip())))
                run.sections.append(section)
    return runs


def unstable_shapes(first: Dict[str, TestRun], second: Dict[str, TestRun]) -> Set[str]:
    """The verdict lines that changed between two runs on this CPU, with their numbers
    masked (``[OK] NR = #, ...``: unwind_vdso prints getpid's result, a PID). A line of
    that shape is compared with its numbers masked, on every side."""
    shapes: Set[str] = set()
    for name, run in first.items():
        other = second.get(name, TestRun())
        if len(other.verdicts) != len(run.verdicts):
            continue  # not aligned; nothing is masked, so differences stay visible
        shapes.update(NUMBER.sub("#", a) for a, b in zip(run.verdicts, other.verdicts)
                      if a != b)
    return shapes


def masked(lines: List[str], shapes: Set[str]) -> List[str]:
    return [NUMBER.sub("#", line) if NUMBER.sub("#", line) in shapes else line
            for line in lines]
