"""Run one instruction on Unicorn (the oracle) and on the reference, and compare.

Test-only helper: builds a seeded random encoding for a form (register or [BX/EBX+disp8]
memory operand in the data page, random immediates), random registers and flags, then
runs it through the differential package's Unicorn runner and through ``reference``.
Only the flags the table calls undefined for this form are masked.
"""

from __future__ import annotations

import random
from typing import Dict, List, Optional, Tuple

from differential.runners.unicorn_runner import UnicornRunner, register_names
from ground.case import Case
from reference import Cpu, Form, SparseMemory, undefined_for
from reference.flags import STATUS

CODE, DATA, STACK = 0x1000, 0x2000, 0x3000
_RUNNER = UnicornRunner()


def _modrm(rng: random.Random, form: Form, adsize: int) -> bytes:
    reg = form.enc.digit if form.enc.digit is not None else rng.randrange(8)
    memory_only = any(spec.startswith("M") for spec in form.specs)
    if memory_only or rng.random() < 0.5:
        rm = 7 if adsize == 16 else 3  # [BX+disp8] / [EBX+disp8]
        return bytes([0x40 | reg << 3 | rm, rng.randrange(0, 0x78)])
    return bytes([0xC0 | reg << 3 | rng.randrange(8)])


def _immediates(rng: random.Random, form: Form, opsize: int, adsize: int) -> bytes:
    out = b""
    for spec in form.specs:
        if spec.startswith("I"):
            size = 1 if spec in ("Ib", "Ibs") else 2 if spec == "Iw" else opsize // 8
            out += bytes(rng.randrange(256) for _ in range(size))
        elif spec.startswith("O"):
            out += (DATA + rng.randrange(0x100)).to_bytes(adsize // 8, "little")
    return out


def random_case(form: Form, mode: str, seed: int) -> Case:
    """A seeded random case for ``form`` in ``mode``."""
    rng = random.Random(f"{form.name}/{mode}/{seed}")
    default = 16 if mode == "real16" else 32
    prefix = b""
    if rng.random() < 0.4:
        prefix = b"\x66"
    opsize = (48 - default) if prefix else default
    code = prefix + bytes(form.enc.opcode[:-1])
    first = 1 if form.mnemonic == "XCHG" else 0  # 90 is NOP, not XCHG eAX, eAX
    code += bytes([form.enc.opcode[-1] + (rng.randrange(first, 8) if form.enc.plus_r else 0)])
    if form.enc.modrm:
        code += _modrm(rng, form, default)
    code += _immediates(rng, form, opsize, default)
    regs: Dict[str, int] = {name: rng.getrandbits(32) for name in register_names(mode)}
    regs.update(ebx=DATA, esp=STACK + 0x800 + rng.randrange(0, 64, 2), eip=CODE,
                eflags=(rng.getrandbits(32) & STATUS) | 2)
    if mode == "real16":
        regs.update({seg: 0 for seg in ("cs", "ds", "es", "fs", "gs", "ss")})
    memory = {CODE: code.ljust(4096, b"\x90"), DATA: rng.randbytes(4096),
              STACK: rng.randbytes(4096)}
    return Case(name=f"{form.name}-{seed}", mode=mode, code=code, regs=regs, memory=memory,
                form=form.name)


def compare(form: Form, case: Case) -> List[str]:
    """Differences between Unicorn and the reference for ``case`` (empty = agree)."""
    theirs = _RUNNER.run(case)
    memory = SparseMemory()
    for base, data in case.memory.items():
        memory.map(base, data)
    cpu = Cpu(memory, case.mode)
    for name, value in case.regs.items():
        cpu.set_reg(name, value)
    result = cpu.step()
    mine_exc: Optional[Tuple[int, str]] = None
    if result.exception is not None:
        mine_exc = (result.exception.vector, result.exception.kind)
    their_exc = None if theirs.exception is None else (theirs.exception.vector,
                                                       theirs.exception.kind)
    problems = []
    if mine_exc != their_exc:
        problems.append(f"exception: reference {mine_exc} unicorn {their_exc}")
    mask = ~result.undefined_flags
    if result.insn is None:
        mask = ~undefined_for(form, 32)[0]
    for name, value in theirs.regs.items():
        mine = cpu.get_reg(name)
        if name == "eflags":
            mine, value = mine & mask, value & mask
        if mine != value:
            problems.append(f"{name}: reference {mine:#x} unicorn {value:#x}")
    pages = memory.pages()
    for base, data in theirs.memory.items():
        if pages[base] != data:
            at = next(i for i in range(4096) if pages[base][i] != data[i])
            problems.append(f"memory {base + at:#x}: reference {pages[base][at]:#x} "
                            f"unicorn {data[at]:#x}")
    return problems


def first_interrupt(uc: object, start: int, end: int, count: int = 0,
                    outside: int = -1) -> Optional[int]:
    """Run Unicorn from ``start`` to ``end`` (at most ``count`` instructions when set) and
    return the first exception vector it raised, ``outside`` when an access left the
    mapped test pages (UcError), or None. Unicorn reports exceptions to a hook, not
    through the IDT, so the system tests compare vectors this way."""
    from unicorn import UC_HOOK_INTR, UcError

    vectors: List[int] = []

    def interrupt(engine: object, vector: int, _data: object) -> None:
        vectors.append(vector)
        engine.emu_stop()  # type: ignore[attr-defined]

    uc.hook_add(UC_HOOK_INTR, interrupt)  # type: ignore[attr-defined]
    try:
        uc.emu_start(start, end, count=count)  # type: ignore[attr-defined]
    except UcError:
        vectors.append(outside)
    return vectors[0] if vectors else None
