"""Instruction semantics, one family per file. How to add a family (read this first).

1. Create ``reference/semantics/<family>.py``. Every module in this package is imported
   by ``load_all()``; you edit no other file. Forms come from ``reference/isa/table.py``
   (already complete; change a row there only to fix it, and say so in the commit).

2. Register one function per instruction, by mnemonic or by form name (a form name wins
   over its mnemonic, so a special form can have its own function)::

       from reference.semantics import implements
       from reference.faults import Fault, DE

       @implements("ADD")                       # every ADD_* form
       def add(cpu, dst, src):
           a, b = dst.read(), src.read()
           total = a + b
           dst.write(total & dst.mask)
           cpu.flags.after_add(a, b, total, dst.size)

       @implements("SAL", "SHL")                # several mnemonics, one function
       @implements("TEST_Eb_Ib_alias")          # or a form name

   Jcc/SETcc/CMOVcc forms have the mnemonics ``"Jcc"``, ``"SETcc"``, ``"CMOVcc"``; the
   condition is ``cpu.insn.cond`` and ``cpu.flags.condition(cc)`` tests it.

3. The function is called as ``fn(cpu, *operands)``, operands in the table's order.
   Operand API (``reference.operands``): ``op.read()``, ``op.write(value)`` (value
   masked to ``op.size`` first: ``value & op.mask``), ``op.size`` in bits (8/16/32/64),
   ``op.mask``, ``op.sign(v)`` (signed view), ``op.is_mem`` / ``op.is_reg``. Memory
   operands: ``op.offset()`` (effective address), ``op.seg``, ``op.part(delta, size)``
   (a piece of the operand at EA + delta: BOUND's bounds), ``op.at(delta, size)`` (delta
   joins the EA, wrapping at the address size: BT's word). Far pointers (``Ap``, ``Mp``):
   ``read()`` is the offset, ``.selector`` the selector.
   Immediates are already extended to the operand size (``Ibs`` sign-extended). A ``J``
   operand's ``read()`` is the branch target (EIP is already the next instruction's).
   ``X``/``Y`` string operands address DS:eSI (override allowed) / ES:eDI at the current
   eSI/eDI; advance them yourself at ``cpu.insn.adsize`` width (SI/DI or ESI/EDI).

4. The instruction: ``cpu.insn`` has ``form``, ``opsize``/``adsize`` (16 or 32),
   ``rep`` (None, "rep" for F3, "repne" for F2; for CMPS/SCAS "rep" is REPE), ``seg``
   (override index or None), ``lock``, ``cond``, ``length``, ``raw``. ``cpu.eip`` is
   already the next instruction; a branch assigns it (mask to the operand size). A REP
   string instruction may do all its iterations in one step (interrupts come later).

5. State: ``cpu.regs[i]`` (EAX..EDI, ints), ``cpu.get_reg("cx")``/``set_reg``,
   ``cpu.eip``, ``cpu.sregs``/``cpu.seg_base`` (ES CS SS DS FS GS = 0..5, constants in
   ``reference.operands``), ``cpu.mode`` ("real16"/"prot32" following CR0.PE,
   "vm86" while EFLAGS.VM = 1 under it: ``reference.system.vm86``),
   ``cpu.default_size`` (CS.D), ``cpu.stack_size`` (SS.B), ``cpu.cpl``; system state
   (CRn, GDTR, TR, MSRs) and its mechanisms: ``reference.system``.
   Flags (``reference.flags``): ``cpu.flags.cf/pf/af/zf/sf/df/of/if_`` read and assign
   0/1; ``after_add(a, b, total, size, keep_cf=False)``, ``after_sub(...)`` (total is the
   unmasked result), ``after_logic(result, size)``, ``set_szp(result, size)``,
   ``set_status(bits, mask)``, ``cpu.flags.value`` is the whole EFLAGS.
   Undefined flags: set them as Unicorn does where you know it, else leave them; the
   comparator masks exactly the table's ``undefined`` rules.

6. Memory and stack: ``cpu.read(seg, offset, nbytes)``, ``cpu.write(seg, offset,
   nbytes, value)`` (segment base and limit applied there: past a real-mode 64 KiB
   limit is #GP(0), #SS(0) on SS), ``cpu.push(value, size_bits)``,
   ``cpu.pop(size_bits)``, ``cpu.peek(size, delta)``, ``cpu.adjust_sp(delta)``. All
   writes are journaled: a fault later in the same instruction undoes them.

7. Exceptions: ``raise Fault(vector, error_code=None)`` (vectors in
   ``reference.faults``: DE, UD, GP, SS, BP, OF...) at the point the SDM's Operation
   says; the step loop rolls the instruction back. Traps (INT n, INT3, INTO):
   ``raise Fault(vector, trap=True)`` after updating state. HLT sets ``cpu.halted``.
   Port I/O: ``cpu.io_in(port, size)`` / ``cpu.io_out(port, size, value)`` when the
   system level adds them; until then a stub may raise ``Unimplemented``.

8. Tests: ``reference/tests/test_<family>.py``; expected values computed independently
   (Python arithmetic written in the test, the SDM by hand, or Unicorn).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Dict, Optional

from reference.isa.form import Form

Semantics = Callable[..., None]
_REGISTRY: Dict[str, Semantics] = {}
_loaded = False


def implements(*keys: str) -> Callable[[Semantics], Semantics]:
    """Register the decorated function for these mnemonics or form names."""

    def register(fn: Semantics) -> Semantics:
        for key in keys:
            if key in _REGISTRY and _REGISTRY[key] is not fn:
                raise ValueError(f"{key} is implemented twice: {_REGISTRY[key]} and {fn}")
            _REGISTRY[key] = fn
        return fn

    return register


def load_all() -> None:
    """Import every family module in this package (each registers its functions)."""
    global _loaded
    if _loaded:
        return
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True


def lookup(form: Form) -> Optional[Semantics]:
    """The function for ``form``: by form name first, then by mnemonic; None if missing."""
    load_all()
    return _REGISTRY.get(form.name) or _REGISTRY.get(form.mnemonic)


def implemented_forms() -> Dict[str, bool]:
    """Form name -> has semantics; for the coverage report."""
    from reference.isa.table import FORMS
    return {form.name: lookup(form) is not None for form in FORMS}
