"""Benchmark programs for the reference CPU, and a timing loop that runs on CPython and PyPy.

Run it as ``python -m reference.benchmark --seconds 2`` (or under ``pypy3`` with
``PYTHONPATH`` at the checkout): it prints one JSON object with instructions per second
per program. Only the standard library and ``reference`` are imported, so the same file
measures both interpreters; ``x86lab bench`` runs it in each and sets Unicorn's figure
for the same bytes beside it.

The programs are hand-encoded 32-bit code (each instruction a separate ``bytes`` so
the count of instructions per iteration is exact). Each is a loop whose counter is ECX:
``setup`` runs once, ``body`` ``iterations`` times, then HLT. Layout (``prot32``, flat):
code at ``CODE``, a 4 KiB data page at ``DATA``, the stack page below ``STACK_TOP``, in a
64 KiB RAM (``FlatMemory``, the memory the PC has, so generated blocks read and store it
directly as they do on a boot).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

CODE, DATA, STACK_TOP = 0x1000, 0x2000, 0x4000
PAGES = (CODE, DATA, STACK_TOP - 0x1000)
RAM = 0x10000
HLT = b"\xf4"


def _u32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "little")


class Program(NamedTuple):
    """A loop: ``setup`` (ECX := iterations first), ``body`` ending in DEC ECX; JNZ."""

    name: str
    what: str
    setup: Sequence[bytes]
    body: Sequence[bytes]

    def code(self, iterations: int) -> bytes:
        setup = [b"\xb9" + _u32(iterations)] + list(self.setup)    # MOV ECX, imm32
        body = b"".join(self.body) + b"\x49"                        # ... DEC ECX
        jnz = b"\x75" + bytes([(-(len(body) + 2)) & 0xFF])          # JNZ body (rel8)
        return b"".join(setup) + body + jnz + HLT

    @property
    def per_iteration(self) -> int:
        return len(self.body) + 2  # the body, DEC ECX, JNZ

    def instructions(self, iterations: int) -> int:
        """Instructions executed before HLT (HLT itself not counted)."""
        return 1 + len(self.setup) + self.per_iteration * iterations

    def hlt_address(self, iterations: int) -> int:
        return CODE + len(self.code(iterations)) - 1


CHECKSUM = Program(
    "checksum-loop", "rotate-and-add checksum over a 4 KiB page (8 instructions/iteration)",
    setup=[b"\xbe" + _u32(0),                  # MOV ESI, 0
           b"\x31\xc0", b"\x31\xd2"],          # XOR EAX, EAX; XOR EDX, EDX
    body=[b"\x0f\xb6\x9e" + _u32(DATA),        # MOVZX EBX, BYTE [ESI+DATA]
          b"\x01\xd8",                          # ADD EAX, EBX
          b"\xd1\xc0",                          # ROL EAX, 1
          b"\x31\xc2",                          # XOR EDX, EAX
          b"\x46",                              # INC ESI
          b"\x81\xe6\xff\x0f\x00\x00"])         # AND ESI, 0xFFF

MIX = Program(
    "instruction-mix", "ALU, memory, stack, LEA/SIB, shifts, IMUL, CMOV, MOVZX "
    "(19 instructions/iteration)",
    setup=[b"\xbc" + _u32(STACK_TOP),          # MOV ESP, STACK_TOP
           b"\xbd" + _u32(DATA),               # MOV EBP, DATA
           b"\x31\xc0",                         # XOR EAX, EAX
           b"\xbb\x01\x00\x00\x00"],            # MOV EBX, 1
    body=[b"\x50",                              # PUSH EAX
          b"\x8b\x45\x08",                      # MOV EAX, [EBP+8]
          b"\x01\xd8",                          # ADD EAX, EBX
          b"\x89\x45\x08",                      # MOV [EBP+8], EAX
          b"\x8d\x54\x58\x03",                  # LEA EDX, [EAX+EBX*2+3]
          b"\xc1\xe2\x03",                      # SHL EDX, 3
          b"\x0f\xaf\xd3",                      # IMUL EDX, EBX
          b"\x31\xd0",                          # XOR EAX, EDX
          b"\x85\xc0",                          # TEST EAX, EAX
          b"\x0f\x44\xda",                      # CMOVZ EBX, EDX
          b"\x83\xc3\x07",                      # ADD EBX, 7
          b"\xf7\xd3",                          # NOT EBX
          b"\x58",                              # POP EAX
          b"\x40",                              # INC EAX
          b"\xc6\x45\x10\xab",                  # MOV BYTE [EBP+16], 0xAB
          b"\x0f\xb6\x75\x10",                  # MOVZX ESI, BYTE [EBP+16]
          b"\xd3\xe8"])                         # SHR EAX, CL

PROGRAMS: Dict[str, Program] = {p.name: p for p in (CHECKSUM, MIX)}


def data_page() -> bytes:
    """The data page's fixed contents (a byte pattern, so checksums are not trivial)."""
    return bytes((i * 7 + 3) & 0xFF for i in range(0x1000))


BLOCKS = {"default": None, "on": 1, "off": 0}
"""``--blocks``: the block compiler as this interpreter's default has it, compiling at
once, or never (the interpreter alone)."""
_threshold: Optional[int] = None


def make_cpu(program: Program, iterations: int):  # -> reference.Cpu
    """A fresh reference CPU at the program's first instruction."""
    from reference import Cpu
    from reference.memory import FlatMemory

    memory = FlatMemory(RAM)
    memory.write_bytes(CODE, program.code(iterations))
    memory.write_bytes(DATA, data_page())
    cpu = Cpu(memory, mode="prot32")
    if _threshold is not None:
        cpu.block_threshold = _threshold
    cpu.set_reg("eip", CODE)
    return cpu


def run_to_halt(program: Program, iterations: int):  # -> reference.Cpu
    """Run the whole program; raise if it stops anywhere but its HLT."""
    cpu = make_cpu(program, iterations)
    result = cpu.run(program.instructions(iterations) + 1)
    if result is None or result.exception is not None or not result.halted:
        raise RuntimeError(f"{program.name}: stopped with {result!r} at eip {cpu.eip:#x}")
    return cpu


def time_program(program: Program, seconds: float, chunk: int = 10_000) -> Dict[str, float]:
    """Instructions per second, steady state: a quarter of the time warms up (PyPy's JIT),
    then whole chunks run until ``seconds`` have passed. The loop never ends on its own
    (ECX starts at 2^32-1), so every chunk runs ``chunk`` instructions."""
    cpu = make_cpu(program, 0xFFFFFFFF)
    warm_until = time.perf_counter() + seconds / 4
    while time.perf_counter() < warm_until:
        _run_chunk(cpu, chunk)
    done, start = 0, time.perf_counter()
    while True:
        _run_chunk(cpu, chunk)
        done += chunk
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return {"instructions": done, "seconds": elapsed, "ips": done / elapsed}


def _run_chunk(cpu: object, chunk: int) -> None:
    result = cpu.run(chunk)  # type: ignore[attr-defined]
    if result is not None:
        raise RuntimeError(f"benchmark loop stopped early: {result!r}")


def interpreter() -> Dict[str, str]:
    return {"implementation": platform.python_implementation(),
            "version": platform.python_version(), "executable": sys.executable}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="time the reference CPU on fixed programs")
    parser.add_argument("--seconds", type=float, default=2.0, help="per program (default 2)")
    parser.add_argument("--programs", default=",".join(PROGRAMS), help="comma-separated")
    parser.add_argument("--blocks", choices=sorted(BLOCKS), default="default",
                        help="the block compiler: this interpreter's default, on, or off")
    args = parser.parse_args(argv)
    global _threshold
    _threshold = BLOCKS[args.blocks]
    unknown = [n for n in args.programs.split(",") if n not in PROGRAMS]
    if unknown:
        parser.error(f"unknown program(s) {', '.join(unknown)}; known: {', '.join(PROGRAMS)}")
    figures = {name: time_program(PROGRAMS[name], args.seconds)
               for name in args.programs.split(",")}
    print(json.dumps({"interpreter": interpreter(), "blocks": args.blocks,
                      "programs": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
