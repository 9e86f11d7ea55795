"""Run one case on x86lab's reference CPU (``reference/``), the code under test. It needs
neither Unicorn nor any other peer: the register names are the case's own."""

from __future__ import annotations

from ground.case import Case, Exc, Outcome, register_names
from reference import Cpu, SparseMemory, Unimplemented


class ReferenceRunner:
    """``ReferenceRunner().run(case) -> Outcome``. A form without semantics yet is not a
    divergence: the outcome then carries ``notes["unimplemented"]`` and no state."""

    name = "reference"

    def run(self, case: Case) -> Outcome:
        memory = SparseMemory()
        for base, data in case.memory.items():
            memory.map(base, data)
        cpu = Cpu(memory, mode=case.mode)
        names = register_names(case.mode)
        for name in names:
            cpu.set_reg(name, case.regs[name])
        try:
            result = cpu.step()
        except Unimplemented as missing:
            return Outcome(regs={}, memory={}, notes={"unimplemented": str(missing)})
        regs = {name: cpu.get_reg(name) for name in names}
        pages = memory.pages()
        exc = result.exception
        exception = None if exc is None else Exc(exc.vector, exc.kind, exc.error_code)
        notes = {"halted": "yes"} if result.halted else {}
        return Outcome(regs=regs, memory={base: pages[base] for base in case.memory},
                       exception=exception, notes=notes)
