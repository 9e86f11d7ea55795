"""The step loop: fetch/decode (cached), execute, and turn guest exceptions into results.

Per instruction: look up the decoded ``Insn`` by linear EIP (decode on a miss), save the
registers, advance EIP, call the semantics function. A ``Fault`` restores the saved
registers and undoes the memory journal, so the state is exactly the one before the
instruction with EIP at it; a trap (``Fault(..., trap=True)``) keeps the state. Then the
CPU's delivery policy decides what happens: ``ReportAndStop`` (now) reports it in the
StepResult; the system level will vector through the IVT/IDT instead. ``Unmapped``
(no test page there) is reported the same way with kind ``"unmapped"`` and vector -1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional

from reference.faults import Fault, Unimplemented, Unmapped
from reference.isa.decoder import decode
from reference.isa.undefined import undefined_for
from reference.operands import CS

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu
    from reference.isa.decoder import Insn


class StepException(NamedTuple):
    """What ended the instruction: ``kind`` is "fault", "trap" or "unmapped" (vector -1);
    same fields as ``differential.case.Exc``, so ``Exc(*result.exception)`` converts."""

    vector: int
    kind: str
    error_code: Optional[int]


class StepResult:
    """The outcome of one ``step()``.

    ``exception``: None or a StepException. ``insn``: the decoded instruction (None if
    decoding itself failed). ``undefined_flags``/``undefined_dest``: what the SDM leaves
    undefined for this execution (from FORMS, with the pre-instruction count/source).
    ``halted``: HLT executed. ``unmapped_address``: the address of an unmapped access.
    """

    __slots__ = ("exception", "insn", "undefined_flags", "undefined_dest", "halted",
                 "unmapped_address")

    def __init__(self, exception: Optional[StepException] = None, insn: Optional[Insn] = None,
                 undefined_flags: int = 0, undefined_dest: bool = False, halted: bool = False,
                 unmapped_address: Optional[int] = None) -> None:
        self.exception = exception
        self.insn = insn
        self.undefined_flags = undefined_flags
        self.undefined_dest = undefined_dest
        self.halted = halted
        self.unmapped_address = unmapped_address

    def __repr__(self) -> str:
        name = self.insn.form.name if self.insn is not None else "?"
        return f"<StepResult {name} exception={self.exception} halted={self.halted}>"


class ReportAndStop:
    """Exception delivery policy for tests: do not deliver, report. (The PC will use a
    policy that pushes FLAGS/CS/IP and jumps through the IVT or IDT.)"""

    def deliver(self, cpu: Cpu, fault: Fault) -> Optional[StepException]:
        kind = "trap" if fault.trap else "fault"
        return StepException(fault.vector, kind, fault.error_code)


def _fetch_decode(cpu: Cpu, linear: int) -> Insn:
    insn = decode(cpu, linear, cpu.fetch_byte)
    from reference.semantics import lookup
    insn.fn = lookup(insn.form)
    cpu.icache[linear] = insn
    cpu.code_pages[linear >> 12] = True
    cpu.code_pages[(linear + insn.length - 1) >> 12] = True
    return insn


def _undefined(insn: Insn) -> tuple:
    """Evaluate the form's undefined rules with the operands' values before execution."""
    form = insn.form
    operands = insn.operands
    conditional = [rule.when for rule in form.undefined if rule.when != "always"]
    count = source = None
    if any(when.startswith("count") for when in conditional):
        count = operands[-1].read() & 0x1F
    if "source==0" in conditional:
        source = operands[-1].read()
    size = operands[0].size if operands else 0
    return undefined_for(form, size, count, source)


def step(cpu: Cpu) -> StepResult:
    """Execute one instruction at CS:EIP and report how it ended."""
    eip = cpu.eip
    linear = (cpu.seg_base[CS] + eip) & 0xFFFFFFFF
    saved = (cpu.regs[:], cpu.flags.value, cpu.sregs[:], cpu.seg_base[:])
    cpu.journal.clear()
    insn = None
    undefined = (0, False)
    try:
        insn = cpu.icache.get(linear)
        if insn is None:
            insn = _fetch_decode(cpu, linear)
        if insn.form.undefined:
            undefined = _undefined(insn)
        cpu.insn = insn
        cpu.eip = (eip + insn.length) & (0xFFFFFFFF if cpu.default_size == 32 else 0xFFFF)
        if insn.fn is None:
            raise Unimplemented(f"no semantics for {insn.form.name} ({insn.raw.hex(' ')})")
        insn.fn(cpu, *insn.operands)
    except Fault as fault:
        if not fault.trap:
            _restore(cpu, eip, saved)
        return StepResult(cpu.delivery.deliver(cpu, fault), insn, *undefined)
    except Unmapped as miss:
        _restore(cpu, eip, saved)
        return StepResult(StepException(-1, "unmapped", None), insn, *undefined,
                          unmapped_address=miss.address)
    except BaseException:
        _restore(cpu, eip, saved)  # a Python bug: leave the state clean, then raise
        raise
    cpu.tsc += 1
    return StepResult(None, insn, undefined[0], undefined[1], cpu.halted)


def _restore(cpu: Cpu, eip: int, saved: tuple) -> None:
    regs, flags, sregs, seg_base = saved
    cpu.regs[:] = regs
    cpu.flags.value = flags
    cpu.sregs[:] = sregs
    cpu.seg_base[:] = seg_base
    cpu.eip = eip
    cpu.rollback()


def run(cpu: Cpu, limit: int) -> Optional[StepResult]:
    """Step up to ``limit`` instructions; stop early at an exception or HLT."""
    for _ in range(limit):
        result = step(cpu)
        if result.exception is not None or result.halted:
            return result
    return None
