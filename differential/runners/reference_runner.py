"""Run one case on x86lab's reference CPU (``reference/``), the code under test. It needs
neither Unicorn nor any other peer: the register names are the case's own."""

from __future__ import annotations

from ground.case import GPRS, Case, Exc, Outcome, register_names
from reference import Cpu, SparseMemory, Unimplemented


class ReferenceRunner:
    """``ReferenceRunner().run(case) -> Outcome``. A form without semantics yet is not a
    divergence: the outcome then carries ``notes["unimplemented"]`` and no state.

    The general registers go in and out through ``Cpu.regs`` (EAX..EDI order, the Cpu's
    documented state) rather than 16 ``set_reg``/``get_reg`` name lookups a case, which
    cost ~10 µs of a campaign case's ~50 µs here (issue 18); EFLAGS, EIP and the
    selectors still go through ``set_reg``/``get_reg``, which keep their rules."""

    name = "reference"

    def run(self, case: Case) -> Outcome:
        memory = SparseMemory()
        for base, data in case.memory.items():
            memory.map(base, data)
        cpu = Cpu(memory, mode=case.mode)
        regs = case.regs
        cpu.regs[:] = [regs[name] & 0xFFFFFFFF for name in GPRS]
        names = register_names(case.mode)
        for name in names[len(GPRS):]:
            cpu.set_reg(name, regs[name])
        try:
            result = cpu.step()
        except Unimplemented as missing:
            return Outcome(regs={}, memory={}, notes={"unimplemented": str(missing)})
        after = {name: value & 0xFFFFFFFF for name, value in zip(GPRS, cpu.regs)}
        for name in names[len(GPRS):]:
            after[name] = cpu.get_reg(name)
        pages = memory.pages()
        exc = result.exception
        exception = None if exc is None else Exc(exc.vector, exc.kind, exc.error_code)
        notes = {"halted": "yes"} if result.halted else {}
        return Outcome(regs=after, memory={base: pages[base] for base in case.memory},
                       exception=exception, notes=notes)
