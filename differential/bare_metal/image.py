"""The bare-metal image: ``runner.S`` linked with the host's cases, and its serial output.

Why a wire format of plain memory writes: the runner then knows nothing of descriptors,
gates or page tables, so everything a case means is written (and reviewed) once, in
Python (``cases.py``), and the very same bytes reach every engine. The runner is built
with the host's ``gcc -m32`` and ``ld`` (gcc-multilib, scripts/apt-packages.txt) as a
Multiboot ELF: ``qemu-system-i386 -kernel`` loads it, SYSLINUX's mboot.c32 loads it on
Bochs, and ``engines.run_reference`` loads its program headers into the reference PC.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

RUNNER_SOURCE = Path(__file__).with_name("runner.S")
LOAD_ADDRESS = 0x100000
EXIT = 0x100040
"""``bm_exit`` in runner.S (``.org 0x40`` after the entry): a case ends with a far JMP to
0x08:EXIT. ``build_image`` checks the linked symbol against this value."""
CASE_MAGIC = 0x45534143  # "CASE"
FILL = 1 << 31
HEADER = struct.Struct("<18I")
"""magic, index, length, CR0, CR3, CR4, GDTR (2 dwords), IDTR (2), TR, LDTR, ESP, SS,
EIP, CS, number of writes, number of dumps: runner.S's record, offsets 0 to 71."""

LINKER_SCRIPT = """ENTRY(_start)
SECTIONS {
  . = 0x100000;
  .text : { *(.text.entry) *(.text) }
  .data : { *(.data) *(.rodata*) }
  .bss : { *(.bss) *(COMMON) }
  .cases : { cases_start = .; *(.cases) }
}
"""


class ImageBuildError(RuntimeError):
    """The runner could not be built; the message carries the tool's last words."""


@dataclass
class Case:
    """One case as the runner sees it: system registers, an entry at CPL 0, memory writes
    (bytes, or ``(length, byte)`` fills) and the ranges to print afterwards."""

    name: str
    family: str
    cr0: int
    cr3: int
    cr4: int
    gdtr: Tuple[int, int]  # (base, limit)
    idtr: Tuple[int, int]
    tr: int
    ldtr: int
    entry: Tuple[int, int]  # (CS, EIP)
    stack: Tuple[int, int]  # (SS, ESP)
    writes: List[Tuple[int, object]] = field(default_factory=list)
    dumps: List[Tuple[str, int, int]] = field(default_factory=list)  # (name, address, length)
    note: str = ""


def encode_case(index: int, case: Case) -> bytes:
    """The record runner.S reads (its header comment is the format)."""
    body = bytearray()
    for address, data in case.writes:
        if isinstance(data, tuple):
            length, byte = data
            body += struct.pack("<III", address, length | FILL, byte & 0xFF)
        else:
            raw = bytes(data)  # type: ignore[call-overload]
            body += struct.pack("<II", address, len(raw)) + raw + bytes(-len(raw) % 4)
    for _, address, length in case.dumps:
        body += struct.pack("<II", address, length)
    (gdt_base, gdt_limit), (idt_base, idt_limit) = case.gdtr, case.idtr
    header = HEADER.pack(
        CASE_MAGIC, index, HEADER.size + len(body), case.cr0, case.cr3, case.cr4,
        gdt_limit | (gdt_base & 0xFFFF) << 16, gdt_base >> 16,
        idt_limit | (idt_base & 0xFFFF) << 16, idt_base >> 16,
        case.tr, case.ldtr, case.stack[1], case.stack[0], case.entry[1], case.entry[0],
        len(case.writes), len(case.dumps))
    return header + bytes(body)


def encode_cases(cases: Sequence[Case], first_index: int = 0) -> bytes:
    """Every record, then the zero dword that ends the list."""
    return b"".join(encode_case(first_index + i, case) for i, case in enumerate(cases)) \
        + bytes(4)


@dataclass
class CaseOutput:
    """What the runner printed for one case: each dump's bytes by address."""

    index: int
    dumps: Dict[int, bytes] = field(default_factory=dict)
    ended: bool = False


@dataclass
class RunOutput:
    """A parsed serial log. ``complete``: "BM END" was seen; ``runner_fault``: the vector
    of a fault in the runner itself; ``last_started``: the case that was running when the
    output stopped (a hang, a triple fault), if any."""

    cases: Dict[int, CaseOutput] = field(default_factory=dict)
    began: bool = False
    complete: bool = False
    runner_fault: Optional[int] = None
    last_started: Optional[int] = None


LINE = re.compile(r"^(C|E) ([0-9a-f]{8})$|^M ([0-9a-f]{8}) ([0-9a-f]*)$"
                  r"|^BM (BEGIN|END)$|^BM RUNNER-FAULT ([0-9a-f]{8})$")


def parse_output(text: str) -> RunOutput:
    """Read the runner's lines; anything before "BM BEGIN" (a BIOS, a boot loader) and
    any line not in the format is ignored."""
    out = RunOutput()
    current: Optional[CaseOutput] = None
    for raw in text.splitlines():
        match = LINE.match(raw.strip("\r"))
        if not match:
            continue
        kind, index, address, data, marker, fault = match.groups()
        if marker == "BEGIN":
            out = RunOutput(began=True)
            current = None
        elif not out.began:
            continue
        elif marker == "END":
            out.complete = True
        elif fault is not None:
            out.runner_fault = int(fault, 16)
        elif kind == "C":
            current = out.cases[int(index, 16)] = CaseOutput(int(index, 16))
            out.last_started = current.index
        elif kind == "E" and current is not None and current.index == int(index, 16):
            current.ended = True
            out.last_started = None
        elif address is not None and current is not None and len(data) % 2 == 0:
            current.dumps[int(address, 16)] = bytes.fromhex(data)
    return out


def _run(argv: List[str], where: Path) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=where)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ImageBuildError(f"{' '.join(argv[:2])} failed: " + " | ".join(tail))


def build_image(cases: Sequence[Case], out: Path, first_index: int = 0) -> Path:
    """Assemble the runner, link it with the encoded ``cases`` and write the ELF to
    ``out``. Raises ImageBuildError when a tool is missing or fails."""
    for tool in ("gcc", "ld", "nm"):
        if shutil.which(tool) is None:
            raise ImageBuildError(f"{tool} not found; install it: apt-get install "
                                  "gcc-multilib binutils")
    with tempfile.TemporaryDirectory(prefix="x86lab-bm-") as scratch:
        where = Path(scratch)
        (where / "cases.bin").write_bytes(encode_cases(cases, first_index))
        (where / "cases.S").write_text('.section .cases, "a"\n.incbin "cases.bin"\n')
        (where / "image.ld").write_text(LINKER_SCRIPT)
        _run(["gcc", "-m32", "-c", str(RUNNER_SOURCE), "-o", "runner.o"], where)
        _run(["gcc", "-m32", "-c", "cases.S", "-o", "cases.o"], where)
        _run(["ld", "-m", "elf_i386", "--no-warn-rwx-segments", "-T", "image.ld",
              "-o", "image.elf", "runner.o", "cases.o"], where)
        symbols = subprocess.run(["nm", "image.elf"], capture_output=True, text=True,
                                 cwd=where).stdout
        exit_at = re.search(r"^([0-9a-f]+) T bm_exit$", symbols, re.M)
        if exit_at is None or int(exit_at.group(1), 16) != EXIT:
            raise ImageBuildError(f"bm_exit is not at {EXIT:#x} in the linked runner")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(where / "image.elf", out)
    return out


def load_segments(elf: bytes) -> List[Tuple[int, bytes, int]]:
    """The PT_LOAD program headers of a 32-bit ELF: (physical address, file bytes,
    memory size), what a Multiboot loader copies (Multiboot 0.6.96, 3.1.3)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 1:
        raise ValueError("not a 32-bit ELF file")
    phoff, = struct.unpack_from("<I", elf, 28)
    phentsize, phnum = struct.unpack_from("<HH", elf, 42)
    segments = []
    for i in range(phnum):
        kind, offset, _vaddr, paddr, filesz, memsz = struct.unpack_from(
            "<6I", elf, phoff + i * phentsize)
        if kind == 1:
            segments.append((paddr, elf[offset:offset + filesz], memsz))
    return segments
