"""The step loop: fetch/decode (cached), execute, and turn guest exceptions into results.

Per instruction: look up the decoded ``Insn`` by the physical address of CS:EIP (decode
on a miss; with paging the TLB's fast map gives the frame), save the
general registers and EFLAGS, advance EIP, run the semantics. A ``Fault`` restores the
saved registers and undoes the journals (memory writes, segment loads), so the state is
exactly the one before the instruction with EIP at it; a trap (``Fault(..., trap=True)``)
keeps the state, and so does a ``partial`` fault (part-way through a REP string or ENTER:
what was done stays, EIP is on the instruction). Then the CPU's
delivery policy decides what happens: ``ReportAndStop`` (now) reports it in the
StepResult; the system level will vector through the IVT/IDT.
``Unmapped`` (no test page there) is reported with kind ``"unmapped"`` and vector -1.

Speed lives here and in ``_fetch_decode``: each decoded instruction gets an ``execute``
closure with its operands bound, and ``run`` has a fast path that builds no StepResult;
when anything is raised it rolls back and replays the instruction through ``step``.
Bytes decoded once are not decoded again at another address (``_recall``), and under
PyPy a PC has each semantics function compiled apart from the loop
(``separate_for_jit``).
"""

from __future__ import annotations

import sys
from functools import partial
from typing import TYPE_CHECKING, Callable, Dict, NamedTuple, Optional, Tuple

from reference.faults import DB, GP, NMI, Fault, Unimplemented, Unmapped
from reference.flags import IF, RF, TF
from reference.isa.decoder import MAX_LENGTH, Insn, decode
from reference.isa.form import ALWAYS, Form
from reference.isa.undefined import undefined_for
from reference.operands import CS
from reference.system.debug_registers import DR7_ENABLES, instruction_breakpoint

DR6_BS = 1 << 14  # DR6: the #DB came from single-stepping

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu


class StepException(NamedTuple):
    """What ended the instruction: ``kind`` is "fault", "trap" or "unmapped" (vector -1);
    same fields as ``ground.case.Exc``, so ``Exc(*result.exception)`` converts."""

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


_PARTIAL = sys.implementation.name != "pypy"
"""Whether ``_bind`` makes a ``functools.partial`` (CPython) or a closure (PyPy): PyPy's
``partial`` is written in Python, its call building a tuple and a dict each time, and
it took a third of PyPy's samples in a tiny boot interpreting (vmprof); with closures
that boot took 19.6 / 19.3 s against 25.8 / 23.0 s (alternating, load 0.8-0.9)."""


def _bind(cpu: Cpu, insn: Insn) -> Callable[[], None]:
    """A no-argument callable that runs the semantics on this instruction's operands. On
    CPython a ``functools.partial``: called from C, it adds no Python frame of its own,
    -1.7 % of an interpreted instruction's host instructions by ``x86lab bench --ir``. On
    PyPy a closure (``_PARTIAL`` says why)."""
    fn = insn.fn
    if fn is None:
        def missing() -> None:
            raise Unimplemented(f"no semantics for {insn.form.name} ({insn.raw.hex(' ')})")
        return missing
    operands = insn.operands
    if _PARTIAL:
        return partial(fn, cpu, *operands)
    if len(operands) == 1:  # the common counts without a star call
        only, = operands
        return lambda: fn(cpu, only)
    if len(operands) == 2:
        first, second = operands
        return lambda: fn(cpu, first, second)
    return lambda: fn(cpu, *operands)


STEPPED = frozenset({"JMPF", "CALLF", "RETF", "IRET", "INT", "INT3", "INTO", "INT1"})
"""Mnemonics (as FORMS spells them) that ``run()`` always sends through ``step()``: far
transfers may switch tasks, and a task switch that faults after its commit point (a
not-present LDT in the new TSS, say) has already changed TR, the busy bits and the
segment registers, which the fast path's rollback (registers, flags, EIP, journals)
cannot undo; ``step()`` delivers such a fault in the new task (SDM Vol. 3A, 7.3)."""


def _fetch_decode(cpu: Cpu, linear: int, physical: int) -> Insn:
    """Decode at ``linear`` (whose first byte is at ``physical``) and cache the result
    under ``physical``: the same code reached through another mapping, another CR3 or
    another privilege level is found again, and a write to its page forgets it. An
    instruction that straddles two pages is not cached (its second half may lie
    elsewhere through another mapping). The bytes in the RAM page at ``physical`` are
    read at once (``code_window``), each as its fetch would have read it, instead of a
    call, and with paging a translation, a byte (``x86lab bench --ir``: -0.7 % of an
    interpreted instruction, -1.1 % of a campaign case, stop 33)."""
    window = getattr(cpu.mem, "code_window", None)
    insn = decode(cpu, linear, cpu.fetch_byte, window(physical) if window else b"")
    facts = _FORM_FACTS.get(id(insn.form))
    if facts is None:
        facts = _form_facts(insn.form)
    insn.fn, insn.stepped, insn.conditional_undefined, insn.fixed_undefined = facts
    insn.execute = _bind(cpu, insn)
    if (physical & 0xFFF) + insn.length <= 0x1000:
        cpu.icache[physical] = insn
        cpu.code_pages.setdefault(physical >> 12, []).append(physical)
        if cpu.remember_decoded:
            _remember(cpu.decoded_bytes[cpu.default_size], insn)
    return insn


_FORM_FACTS: Dict[int, Tuple[object, bool, bool, Tuple[int, bool]]] = {}
"""id of a FORMS row -> what every instruction decoded from it gets (``_form_facts``),
worked out at its first decoding: ~1.5 µs of a differential case's decoding, where
every case's bytes are new (issue 18). The rows live as long as the table."""


def _form_facts(form: Form) -> Tuple[object, bool, bool, Tuple[int, bool]]:
    """The row's semantics function, whether ``run()`` always steps it (``STEPPED``),
    whether its undefined flags depend on operand values, and the fixed ones (mask,
    whether a destination is undefined) when they do not (``_undefined``)."""
    from reference.semantics import lookup
    rules = form.undefined
    facts = (lookup(form), form.mnemonic in STEPPED,
             any(rule.when != ALWAYS for rule in rules),
             (form.always_undefined, any(rule.dest for rule in rules if rule.when == ALWAYS)))
    _FORM_FACTS[id(form)] = facts
    return facts


def _remember(trie: dict, insn: Insn) -> None:
    """File ``insn`` under its bytes in ``trie`` (``Cpu.decoded_bytes``): one level of
    dicts per byte, the instruction itself where its last byte leads. No instruction's
    bytes begin another's (see ``_recall``), so a leaf never needs children."""
    node = trie
    raw = insn.raw
    for byte in raw[:-1]:
        node = node.setdefault(byte, {})
    node[raw[-1]] = insn


def _recall(cpu: Cpu, physical: int) -> Optional[Insn]:
    """The instruction at ``physical`` made from one already decoded from the same bytes
    (None if its bytes are new): decoding reads bytes one by one and what it makes
    depends only on them and CS.D, so the complete instructions form a prefix-free set
    and the known instruction the bytes here lead to is the instruction here. Decoding
    costs tens of microseconds; the tiny kernel's boot decodes 153,000 instructions from
    41,000 distinct byte strings. Only bytes inside the physical page are looked at
    (nothing is translated or fetched, so nothing can fault); the copy shares the
    operands and the bound semantics (they hold no address) and has its own counters,
    and is cached as ``_fetch_decode`` caches. ``run()``'s fast path recalls too, so a
    recalled instruction's first run skips ``step()`` (PyPy, the tiny boot: 15.1/14.0 ->
    14.5/12.5 s user, alternating, load 5). That once broke seven bare-metal task-switch
    cases: a far JMP's first run skipped ``step()`` and its faulting task switch met the
    fast path's rollback; far transfers always go through ``step()`` now (``STEPPED``).
    """
    node = cpu.decoded_bytes[cpu.default_size]
    if not node:
        return None
    end = min(physical + MAX_LENGTH, (physical | 0xFFF) + 1)
    try:
        window = cpu.mem.read_bytes(physical, end - physical, "fetch")
    except Unmapped:
        return None
    for byte in window:
        node = node.get(byte)
        if node is None:
            return None
        if type(node) is not dict:
            insn = _copy(node)
            cpu.icache[physical] = insn
            cpu.code_pages.setdefault(physical >> 12, []).append(physical)
            return insn
    return None


def _copy(template: Insn) -> Insn:
    """A new instruction sharing everything with ``template`` but the per-address
    counters (``hits``, ``block``, which ``Insn()`` starts afresh)."""
    insn = Insn()
    insn.form, insn.operands, insn.length = template.form, template.operands, template.length
    insn.opsize, insn.adsize, insn.seg = template.opsize, template.adsize, template.seg
    insn.rep, insn.lock, insn.cond, insn.reg = (template.rep, template.lock, template.cond,
                                                template.reg)
    insn.raw, insn.fn, insn.opcode = template.raw, template.fn, template.opcode
    insn.execute, insn.invalid = template.execute, template.invalid
    insn.conditional_undefined = template.conditional_undefined
    insn.fixed_undefined = template.fixed_undefined
    insn.stepped = template.stepped
    return insn


def _undefined(insn: Insn) -> Tuple[int, bool]:
    """Evaluate the form's undefined rules with the operands' values before execution:
    the count (last operand, low 5 bits) of shifts, the source of BSF/BSR."""
    if not insn.conditional_undefined:
        return insn.fixed_undefined
    form = insn.form
    operands = insn.operands
    last = operands[-1].read()
    size = operands[0].size
    return undefined_for(form, size, count=last & 0x1F, source=last)


def step(cpu: Cpu) -> StepResult:
    """Execute one instruction at CS:EIP and report how it ended. Before it, a pending
    external interrupt (INTR with IF = 1, outside an interrupt shadow) is delivered
    instead: the result then has kind "interrupt" and no instruction ran."""
    shadow = cpu.interrupt_shadow
    cpu.interrupt_shadow = False
    if cpu.nmi_requested and not cpu.nmi_blocked and not shadow:
        cpu.nmi_requested = False
        cpu.nmi_blocked = True
        return _external_interrupt(cpu, NMI)
    if cpu.intr_requested and cpu.flags.value & IF and not shadow:
        return _external_interrupt(cpu, cpu.intr_controller.acknowledge())
    if cpu.watch_hits and not shadow:  # data breakpoints held back by MOV SS stay
        cpu.watch_hits = 0
    eip = cpu.eip
    linear = (cpu.seg_base[CS] + eip) & 0xFFFFFFFF
    regs, flags = cpu.regs[:], cpu.flags.value
    if flags & RF:  # RF lasts until an instruction starts (SDM Vol. 3A, 17.3.1.1)
        cpu.flags.value = flags & ~RF
    cpu.journal.clear()
    cpu.seg_journal.clear()
    insn = None
    undefined = (0, False)
    try:
        if cpu.dr[5] & DR7_ENABLES and not flags & RF:  # a code breakpoint comes first
            instruction_breakpoint(cpu, linear)  # (SDM Vol. 3A, Table 6-2, priority 7)
        physical = cpu.code_physical(linear)  # with paging: the fetch's checks, or #PF
        insn = cpu.icache.get(physical)
        if insn is None:
            insn = _recall(cpu, physical) or _fetch_decode(cpu, linear, physical)
        if eip + insn.length - 1 > cpu.seg_limit[CS]:
            raise Fault(GP, 0)  # the instruction runs past the code segment limit
        undefined = _undefined(insn)
        cpu.insn = insn
        cpu.eip = (eip + insn.length) & (0xFFFFFFFF if cpu.default_size == 32 else 0xFFFF)
        insn.execute()
    except Fault as fault:
        if not (fault.trap or fault.partial):
            _restore(cpu, eip, regs, flags)
        try:
            delivered = cpu.delivery.deliver(cpu, fault)
        except BaseException:  # a gap in delivery (a task gate): back to before the insn
            _restore(cpu, eip, regs, flags)
            raise
        return StepResult(delivered, insn, *undefined)
    except Unmapped as miss:
        if not miss.partial:
            _restore(cpu, eip, regs, flags)
        return StepResult(StepException(-1, "unmapped", None), insn, *undefined,
                          unmapped_address=miss.address)
    except BaseException:
        _restore(cpu, eip, regs, flags)  # a Python bug: leave the state clean, then raise
        raise
    cpu.tsc += 1
    hits = cpu.watch_hits
    if (flags & TF or hits) and not (cpu.interrupt_shadow and insn.form.mnemonic != "STI"):
        # single-step: a #DB trap after an instruction that began with TF=1; data
        # breakpoints: a #DB trap after the instruction that touched a watched byte
        # (17.3.1.2). One #DB reports both, DR6.BS and DR6.Bn saying why; MOV SS and
        # POP SS hold them back one instruction (SDM Vol. 3A, 6.8.3).
        if flags & TF:
            cpu.dr[4] |= DR6_BS
        if hits:
            cpu.dr[4] |= hits
            cpu.watch_hits = 0
        exception = cpu.delivery.deliver(cpu, Fault(DB, trap=True))
        return StepResult(exception, insn, undefined[0], undefined[1], cpu.halted)
    return StepResult(None, insn, undefined[0], undefined[1], cpu.halted)


def _restore(cpu: Cpu, eip: int, regs: list, flags: int) -> None:
    cpu.regs[:] = regs
    cpu.flags.value = flags
    cpu.eip = eip
    cpu.interrupt_shadow = False
    cpu.rollback()


def _external_interrupt(cpu: Cpu, vector: int) -> StepResult:
    """Deliver an interrupt from the INTR line (its vector from the controller's
    acknowledge cycle, SDM Vol. 3A, 6.3.2) or NMI; a halted CPU resumes after its HLT."""
    cpu.halted = False
    fault = Fault(vector, trap=True)
    fault.external = True
    exception = cpu.delivery.deliver(cpu, fault)
    if exception is not None:
        exception = StepException(exception.vector, "interrupt", exception.error_code)
    return StepResult(exception, None)


_SEPARATED = False


def separate_for_jit() -> None:
    """Under PyPy, have its JIT compile each instruction's semantics function, and the
    slow path (``step``, decoding), as code of its own that the loop in ``run`` calls,
    instead of copying it into every trace of that loop. (Does nothing elsewhere, and
    nothing the second time.)

    Why: PyPy traces one pass of ``run``'s loop with the semantics of whichever
    instruction was running inlined; every other instruction shape then leaves that
    trace at a guard and, once seen often enough, gets a bridge of its own holding the
    rest of the pass. A boot runs thousands of shapes (the tiny kernel: ~2,600 loops
    and bridges, 6-7 s of tracing and 2 s of machine-code generation of a ~28 s boot,
    measured with ``PYPYLOG=jit-summary``) and a long tail of them leaves compiled code
    for PyPy's slow blackhole interpreter (4.6 M entries from the interpreter into
    compiled code per boot, ``jit-backend-counts``). Compiled apart, each semantics
    function is traced once for all the places it runs from, and the loop's bridges
    shrink to a call. Measured on the tiny boot to the prompt (two boots at once, user
    CPU seconds, load 4-11): 33.1 s and 30.9 s against 38.0 s and 35.0 s."""
    global _SEPARATED
    if _SEPARATED:
        return
    _SEPARATED = True
    try:
        import pypyjit  # type: ignore[import-not-found]
    except ImportError:
        return
    from reference.isa.table import FORMS
    from reference.semantics import lookup
    functions = {lookup(form) for form in FORMS} - {None}
    functions.update((step, _fetch_decode, _recall, decode, _restore, _external_interrupt))
    for function in functions:
        pypyjit.dont_trace_here(0, False, function.__code__)  # type: ignore[union-attr]
    pypyjit.set_param(PC_JIT_PARAMS)  # type: ignore[union-attr]


PC_JIT_PARAMS = "trace_limit=1200,trace_eagerness=50,function_threshold=400"
"""PyPy JIT parameters for a PC (``separate_for_jit``; PyPy's defaults: trace_limit=6000,
trace_eagerness=200, function_threshold=1619). A boot runs thousands of instruction
shapes a few thousand times each rather than a few loops millions of times: shorter
traces cost less to make and fail less often, bridges made after 50 guard failures
instead of 200 send less through the blackhole interpreter, and functions get traces
of their own sooner. Measured on the tiny boot to the prompt (31.4 M instructions,
``pypy --jit PARAMS -m reference.pc ...``, user CPU seconds, alternating, load 4-9):
defaults 23.9, 19.1, 17.8 s; these 14.7, 14.0, 16.0 s. Singly (load ~1-3, one run
each): trace_limit=800 15.5 s, 400 21.6 s, 10000 24.2 s; threshold=3000 23.6 s; with
trace_limit=800, threshold=500 14.9 s, disable_unrolling=50 16.8 s. ``PYPYLOG=jit-summary``
on the defaults: 2,133 traces, 3.3 s tracing and 1.0 s of backend in an 18 s boot."""


class BlockStopped(Exception):
    """Raised by a compiled loop block (``reference.blocks.layout``) when something was
    raised in one of its passes: it has put back the state at that pass's start, and
    ``ran`` instructions (its earlier passes) stay done; ``__cause__`` is what was
    raised."""

    def __init__(self, ran: int) -> None:
        super().__init__(ran)
        self.ran = ran


def run(cpu: Cpu, limit: int) -> Optional[StepResult]:
    """Execute up to ``limit`` instructions; stop at an exception or HLT and return that
    step's StepResult (None if the limit was reached). Same results as calling ``step``
    ``limit`` times: an instruction that raises is rolled back and replayed by ``step``.
    The limit counts steps: an interrupt or exception delivered through the IDT without
    stopping the run is one, though no instruction retired (``cpu.tsc`` does not move);
    ``cpu.last_run_steps`` says how many the run took, so a caller that cuts one run into
    several (``reference.pc.machine.Pc._run_cpu``) ends where the one run would.

    Blocks run in chains: after a block, the block at the new EIP (if it has one that
    fits the budget) runs at once, without the loop's checks: nothing a block runs
    changes what they look at (TF, RF, IF, the interrupt shadow, the debug registers,
    CS, CPL and the TLB object change only by instructions that are stepped, and no
    block starts at one), except a pending interrupt, which ends the chain. The blocks
    of a chain share one entry state (registers, EFLAGS, the write journal): when one
    raises, the whole chain is replayed through the interpreter, as one block is. A
    loop block is a chain of its own: each of its passes starts the write journal
    afresh (a fault rolls back that pass only), so the writes of blocks before it
    could no longer be undone, nor its earlier passes' by a block after it. Why: on a
    warm boot, this loop's own work per block call (its checks, the register snapshot,
    the journal clears) was about a third of the bytecodes of the block path (blocks
    average 11 instructions). Measured: host instructions per guest instruction with
    blocks 6,099 -> 5,855 (``x86lab bench --ir``); with the lazy flags
    (``reference.blocks.lazy_flags``) too, the warm tiny boot 17.0-18.7 s against
    17.6-20.2 s before both, faster in 3 alternating pairs (stop 29)."""
    icache = cpu.icache
    seg_base = cpu.seg_base
    journal = cpu.journal
    seg_journal = cpu.seg_journal
    seg_limit = cpu.seg_limit  # read each time: a far jump may load another CS later
    done = 0
    cooling = 0  # instructions to run one by one after a block raised (its replay)
    while done < limit:
        eip = cpu.eip
        linear = (seg_base[CS] + eip) & 0xFFFFFFFF
        tlb = cpu.tlb
        if tlb is None:
            physical = linear
        else:  # a page this privilege class already fetched from: its physical frame
            frame = tlb.readable[cpu.cpl == 3].get(linear >> 12)
            physical = -1 if frame is None else frame | (linear & 0xFFF)
        insn = icache.get(physical)
        if insn is None and physical >= 0:
            insn = _recall(cpu, physical)
        flags = cpu.flags.value
        if (insn is None or insn.stepped or flags & (TF | RF)
                or eip + insn.length - 1 > seg_limit[CS]
                or cpu.interrupt_shadow or (cpu.intr_requested and flags & IF)
                or cpu.nmi_requested  # (INTR with IF = 0 waits: nothing here can set IF
                # but an instruction, and the next pass looks again)
                or cpu.dr[5] & DR7_ENABLES):  # breakpoints armed: each insn through step()
            result = step(cpu)
        else:
            if cooling:
                cooling -= 1
            else:
                block = insn.block
                if block is None and cpu.block_threshold:
                    insn.hits += 1
                    if insn.hits >= cpu.block_threshold or (
                            insn.hits == cpu.cached_threshold and cpu.block_cache is not None):
                        from reference.blocks.compiler import compile_block
                        block = insn.block = compile_block(  # early: only if cached
                            cpu, linear, physical,
                            cached_only=insn.hits < cpu.block_threshold)
                if (block is not None and block.length and block.length <= limit - done
                        and eip + block.span - 1 <= seg_limit[CS]):
                    regs = cpu.regs[:]
                    journal.clear()
                    seg_journal.clear()
                    start = eip
                    ran = 0  # instructions of the blocks before this one in the chain
                    frames = None if tlb is None else tlb.readable[cpu.cpl == 3]
                    try:
                        while True:  # a chain of blocks (see the docstring)
                            cpu.running_block = block
                            ran += block.run(cpu, eip, limit - done - ran)
                            if block.loops or cpu.intr_requested or cpu.nmi_requested:
                                break
                            eip = cpu.eip
                            linear = (seg_base[CS] + eip) & 0xFFFFFFFF
                            if frames is None:
                                physical = linear
                            else:
                                frame = frames.get(linear >> 12)
                                if frame is None:
                                    break
                                physical = frame | (linear & 0xFFF)
                            insn = icache.get(physical)
                            if insn is None:
                                break
                            block = insn.block
                            if (block is None or not block.length or block.loops
                                    or block.length > limit - done - ran
                                    or eip + block.span - 1 > seg_limit[CS]):
                                break
                    except BlockStopped as stopped:  # a loop block, back at its pass's
                        cpu.running_block = None     # entry: replay that pass
                        cpu.tsc += ran + stopped.ran
                        cpu.in_blocks += ran + stopped.ran
                        done += ran + stopped.ran
                        if not isinstance(stopped.__cause__, Exception):
                            raise stopped.__cause__ from None  # type: ignore[misc]
                        cooling = block.length
                        continue
                    except BaseException as raised:  # replay the chain through step()
                        cpu.running_block = None
                        _restore(cpu, start, regs, flags)
                        if not isinstance(raised, Exception):
                            raise
                        cooling = ran + block.length
                        continue
                    cpu.running_block = None
                    cpu.tsc += ran
                    cpu.in_blocks += ran
                    done += ran
                    continue
                if block is not None and not block.length:  # its block is being made
                    insn.hits += 1  # (or none is worth it): how hot it is meanwhile
            r0, r1, r2, r3, r4, r5, r6, r7 = cpu.regs  # locals: no allocation in the JIT
            if journal:
                journal.clear()
            if seg_journal:
                seg_journal.clear()
            cpu.insn = insn
            cpu.eip = (eip + insn.length) & (0xFFFFFFFF if cpu.default_size == 32 else 0xFFFF)
            try:
                insn.execute()
            except BaseException:
                _restore(cpu, eip, [r0, r1, r2, r3, r4, r5, r6, r7], flags)
                result = step(cpu)
            else:
                cpu.tsc += 1
                done += 1
                if cpu.halted:
                    cpu.last_run_steps = done
                    return StepResult(None, insn, *_undefined(insn), halted=True)
                continue
        done += 1
        if result.exception is not None or result.halted:
            cpu.last_run_steps = done
            return result
    cpu.last_run_steps = done
    return None
