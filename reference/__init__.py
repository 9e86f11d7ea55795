"""x86lab's reference IA-32 emulator: readable, table-driven, stdlib only.

Public API::

    from reference import Cpu, SparseMemory, StepResult, FORMS
    mem = SparseMemory(); mem.map(0x1000, code)
    cpu = Cpu(mem, mode="prot32")        # or "real16"
    cpu.set_reg("eip", 0x1000)
    result = cpu.step()                  # StepResult; .exception None or StepException
    mem.pages()                          # {page base: 4096 bytes}
"""

from __future__ import annotations

from reference.cpu import Cpu
from reference.faults import Fault, Unimplemented, Unmapped
from reference.flags import Flags
from reference.interrupts import RealModeDelivery
from reference.isa.decoder import decode_bytes
from reference.isa.form import Form, Undefined
from reference.isa.table import BY_NAME, FORMS
from reference.isa.undefined import undefined_for
from reference.memory import FlatMemory, SparseMemory
from reference.semantics import implemented_forms, implements
from reference.step import ReportAndStop, StepException, StepResult

__all__ = ["Cpu", "SparseMemory", "FlatMemory", "StepResult", "StepException", "FORMS",
           "BY_NAME", "decode_bytes", "Form", "Undefined", "Fault", "Unmapped",
           "Unimplemented", "Flags", "ReportAndStop", "RealModeDelivery", "implements",
           "implemented_forms", "undefined_for"]
