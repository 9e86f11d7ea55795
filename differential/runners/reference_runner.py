"""Run one case on x86lab's reference CPU (``reference/``), the code under test. It needs
neither Unicorn nor any other peer: the register names are the case's own."""

from __future__ import annotations

from typing import Dict, Tuple

from ground.case import GPRS, MODES, Case, Exc, Outcome, register_names
from reference import Cpu, SparseMemory, Unimplemented
from reference.cpu import ACCESSORS, Accessor
from reference.operands import CS
from reference.step import StepResult

_OTHERS: Dict[str, Tuple[Tuple[str, Accessor], ...]] = {
    mode: tuple((name, ACCESSORS[name]) for name in register_names(mode)[len(GPRS):])
    for mode in MODES}
"""The registers of a case of each mode beyond the general ones (EIP, EFLAGS and, in
real16, the selectors) with their accessors (``reference.cpu.ACCESSORS``, what
``set_reg``/``get_reg`` use), worked out once: building and slicing the names twice a
case cost ~0.4 µs, and finding each accessor by name in ``set_reg``/``get_reg`` ~0.4 µs
a register (issue 18)."""


class _CaseCpu(Cpu):
    """The runner's Cpu: it runs one instruction between resets, so no instruction it
    decodes turns up again at another address, and filing each under its bytes
    (``Cpu.remember_decoded``) is left out: 228.2k -> 224.9k instructions a case
    (callgrind, 1,000 FORMS cases, issue 18)."""

    remember_decoded = False


class ReferenceRunner:
    """``ReferenceRunner().run(case) -> Outcome``. A form without semantics yet is not a
    divergence: the outcome then carries ``notes["unimplemented"]`` and no state.

    The general registers go in and out through ``Cpu.regs`` (EAX..EDI order, the Cpu's
    documented state) rather than 16 ``set_reg``/``get_reg`` name lookups a case, which
    cost ~10 µs of a campaign case's ~50 µs here (issue 18); EFLAGS, EIP and the
    selectors go through the accessors ``set_reg``/``get_reg`` use, which keep their
    rules. One Cpu per mode serves every case, put back in a fresh Cpu's state by
    ``Cpu.reset``, and so does its memory, which ``SparseMemory.load`` gives each case's
    pages."""

    name = "reference"

    def __init__(self, compiled: bool = False) -> None:
        self.compiled = compiled
        """Run the instruction as a one-instruction block of the block compiler
        (``reference.blocks``) when it may be compiled: the ``reference-blocks`` engine,
        which checks the generated code form by form against the same vectors."""
        self.blocks_run = 0  # cases whose instruction ran as a compiled block
        self._cpus: Dict[str, Tuple[Cpu, SparseMemory]] = {}  # one per mode, and its memory

    def run(self, case: Case) -> Outcome:
        kept = self._cpus.get(case.mode)
        if kept is None:
            memory = SparseMemory()
            cpu = _CaseCpu(memory, mode=case.mode)
            self._cpus[case.mode] = cpu, memory
        else:
            cpu, memory = kept
            cpu.reset()  # exactly a fresh Cpu's state (Cpu.reset), its memory kept
        memory.load(case.memory)  # this case's pages alone
        regs = case.regs
        cpu.regs[:] = [regs[name] & 0xFFFFFFFF for name in GPRS]
        others = _OTHERS[case.mode]
        for name, access in others:
            access.set(cpu, regs[name])
        try:
            if self.compiled:
                result, made = compiled_step(cpu)
                self.blocks_run += made
            else:
                result = cpu.step()
        except Unimplemented as missing:
            return Outcome(regs={}, memory={}, notes={"unimplemented": str(missing)})
        after = {name: value & 0xFFFFFFFF for name, value in zip(GPRS, cpu.regs)}
        for name, access in others:
            after[name] = access.get(cpu)
        exc = result.exception
        exception = None if exc is None else Exc(exc.vector, exc.kind, exc.error_code)
        notes = {"halted": "yes"} if result.halted else {}
        return Outcome(regs=after, memory=memory.final(case.memory),
                       exception=exception, notes=notes)


def compiled_step(cpu: Cpu) -> Tuple[StepResult, bool]:
    """One instruction through the step loop's compiled path: the instruction is decoded
    and made a one-instruction block (``compile_block(..., longest=1)``; NO_BLOCK for a
    form blocks never hold, which ``run()`` then interprets), and ``run(1)`` takes it
    exactly as it takes any block: a fault inside restores the entry state and replays
    the instruction through ``step()``. Also: whether a block was made."""
    from reference.blocks.compiler import compile_block
    from reference.faults import Fault, Unmapped
    from reference.step import _fetch_decode

    linear = (cpu.seg_base[CS] + cpu.eip) & 0xFFFFFFFF
    try:
        physical = cpu.code_physical(linear)
        insn = cpu.icache.get(physical) or _fetch_decode(cpu, linear, physical)
    except (Fault, Unmapped):  # the fetch itself fails: step() reports it
        return cpu.step(), False
    made = False
    if physical in cpu.icache:  # cached (it lies within one page): compile it
        insn.block = compile_block(cpu, linear, physical, longest=1)
        made = bool(insn.block and insn.block.length)
    result = cpu.run(1)
    return (result if result is not None else StepResult(None, insn, halted=cpu.halted)), made
