"""String instructions: MOVS CMPS STOS LODS SCAS INS OUTS with REP/REPE/REPNE (SDM Vol. 2B).

The decoder hands each form its ``X`` (seg:eSI, DS unless overridden) and ``Y`` (ES:eDI,
never overridden) memory operands; they address memory at the *current* eSI/eDI, so one
iteration is "do the access, then step the index registers". The address size (67
prefix) picks SI/DI/CX or ESI/EDI/ECX: with 16-bit addressing only the low halves move
and wrap at 64 KiB, the upper halves stay as they were.

REP follows the SDM's "REP/REPE/REPNE" Operation: test the count before each iteration
(so ECX = 0 does nothing, not even a memory access), decrement after it, and for CMPS/
SCAS stop early on ZF. F2 on MOVS/STOS/LODS/INS/OUTS repeats exactly like F3, as the
hardware does. All iterations run in one step; if one faults part-way (see ``_repeat``)
the step reports that fault with the finished iterations kept and EIP on the
instruction, as the SDM and the hardware do.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

from reference.cpu import Cpu
from reference.faults import Fault, Unmapped
from reference.flags import TF
from reference.operands import Operand
from reference.semantics import implements
from reference.semantics.misc import port_in, port_out

ECX, ESI, EDI = 1, 6, 7
PAGE_SIZE = 4096


def add_at_address_size(cpu: Cpu, index: int, delta: int) -> int:
    """Register ``index`` += ``delta`` at the instruction's address size (CX/SI/DI or
    ECX/ESI/EDI); returns the new value at that size. LOOP and JCXZ use it too."""
    regs = cpu.regs
    if cpu.insn.adsize == 32:
        regs[index] = (regs[index] + delta) & 0xFFFFFFFF
        return regs[index]
    low = (regs[index] + delta) & 0xFFFF
    regs[index] = (regs[index] & 0xFFFF0000) | low
    return low


def count_register(cpu: Cpu) -> int:
    """CX or ECX, as the address size says."""
    return cpu.regs[ECX] & (0xFFFFFFFF if cpu.insn.adsize == 32 else 0xFFFF)


def keep_state_at_fault(cpu: Cpu, stop: Exception) -> None:
    """Mark ``stop`` (a Fault or Unmapped about to be re-raised) so that the step loop
    reports it with the state as it is now instead of rolling back, with EIP put back
    on the instruction as for any fault. ENTER uses it too."""
    cpu.eip = (cpu.eip - cpu.insn.length) & (0xFFFFFFFF if cpu.default_size == 32
                                             else 0xFFFF)
    stop.partial = True  # type: ignore[attr-defined]


def _step(cpu: Cpu, size: int) -> int:
    """How far eSI/eDI move per element: +size/8 with DF = 0, -size/8 with DF = 1."""
    return -(size >> 3) if cpu.flags.df else size >> 3


def _repeat(cpu: Cpu, once: Callable[[], None], compares: bool = False,
            progressed: bool = False) -> None:
    """Run one iteration, or all of them under a REP prefix (SDM REP Operation):
    WHILE count != 0: iterate; count -= 1; for CMPS/SCAS exit if REPE and ZF = 0 or if
    REPNE and ZF = 1.

    ``once`` does every access that can fault before it changes any state, so an
    iteration either happens whole or not at all. When iteration k > 1 faults, the fault
    is reported with ECX/ESI/EDI and memory reflecting the k-1 completed iterations and
    EIP back on the instruction, so that it resumes (SDM Vol. 2B, REP/REPE/REPNE:
    "A repeating string operation can be suspended by an exception"). The exception is
    marked ``partial`` so that the step loop keeps this state instead of rolling back.
    ``progressed`` says a fast path already did iterations of this instruction.

    Single-stepping (TF = 1) traps after each iteration, with EIP still on the
    instruction while iterations remain (SDM Vol. 3A, 18.3.1.4: "If an instruction is
    executed with TF = 1 and it is a repeated string instruction, a single-step trap
    occurs after each iteration"), so one step does one iteration here; and so does it
    while a data breakpoint is armed (Vol. 3B, 17.3.1.2: "the exception is generated
    after the iteration in which the memory address breakpoint condition occurred").
    """
    rep = cpu.insn.rep
    if rep is None:
        once()
        return
    if count_register(cpu) == 0:
        return  # nothing to do, or a fast path did it all (the common way here)
    stepping = one_at_a_time(cpu)
    first = not progressed
    while count_register(cpu) != 0:
        try:
            once()
        except (Fault, Unmapped) as stop:
            if not first:  # else nothing done yet: an ordinary fault of this instruction
                keep_state_at_fault(cpu, stop)
            raise
        first = False
        if add_at_address_size(cpu, ECX, -1) == 0:
            return
        if compares and rep == "rep" and not cpu.flags.zf:
            return  # REPE: the elements differed
        if compares and rep == "repne" and cpu.flags.zf:
            return  # REPNE: the elements matched
        if stepping:  # the #DB trap may come now; the next step does the next iteration
            cpu.eip = (cpu.eip - cpu.insn.length) & (0xFFFFFFFF if cpu.default_size == 32
                                                     else 0xFFFF)
            return


# -- fast path for REP MOVS / REP STOS (memcpy, memmove, memset, clear_page) ------------
# One element per Python iteration costs ~8 us on CPython (0.12 M iterations/s measured
# for REP MOVSB); moving a whole run at once costs about as much as one element. A run
# stops where the element-by-element loop could behave differently: at a page end (so
# a fault still lands on the exact element), at the address-size wrap, and, for MOVS,
# where the destination lies in the part of the source run still to be read (the loop
# would then copy elements it had just written). An element that itself crosses a page
# end is a run of one, done with the same one access as the loop's. Runs go up (DF = 0)
# or down (DF = 1: the kernel's memmove copies down when the destination is above the
# source). Anything a run cannot do is left to ``_repeat``.


def one_at_a_time(cpu: Cpu) -> bool:
    """One iteration per step: single-stepping (TF), or a data breakpoint armed (the
    #DB trap comes after the iteration that touched it), see ``_repeat``."""
    return bool(cpu.flags.value & TF or cpu.watch_reads or cpu.watch_writes)


def _runs(cpu: Cpu) -> bool:
    """Whether a fast path may do many iterations at once: under REP, and not one
    iteration per step (``one_at_a_time``)."""
    return cpu.insn.rep is not None and not one_at_a_time(cpu)


def _run_length(cpu: Cpu, seg: int, offset: int, nbytes: int, down: bool = False) -> int:
    """Elements of ``nbytes`` from seg:offset, going up (or down: the element at
    ``offset`` first, then those below it) that stay in the first one's page and do not
    wrap the offset at the address size; 1 when that element crosses a page end itself
    (it is then a run of its own), 0 when it wraps the offset."""
    top = 1 << cpu.insn.adsize
    if offset + nbytes > top:
        return 0
    within = (cpu.seg_base[seg] + offset) & (PAGE_SIZE - 1)
    if within + nbytes > PAGE_SIZE:
        return 1
    if down:
        return min(within, offset) // nbytes + 1
    return min(PAGE_SIZE - within, top - offset) // nbytes


def _bulk(cpu: Cpu, nbytes: int, src: Optional[Operand], dst: Operand,
          pattern: bytes) -> bool:
    """Do REP iterations a run at a time (up when ``nbytes`` > 0, down when it is
    negative, as ``_step`` gives it); True if any were done. ``src`` None means STOS
    (store ``pattern``), else MOVS."""
    down = nbytes < 0
    nbytes = abs(nbytes)
    done = False
    while True:
        count = count_register(cpu)
        di = dst.offset()
        k = min(count, _run_length(cpu, dst.seg, di, nbytes, down))
        if src is not None:
            si = src.offset()
            k = min(k, _run_length(cpu, src.seg, si, nbytes, down))
            from_linear = cpu.seg_base[src.seg] + si
            to_linear = cpu.seg_base[dst.seg] + di
            ahead = to_linear - from_linear if not down else from_linear - to_linear
            if 0 < ahead < k * nbytes:
                return done  # the destination overtakes the source: element order matters
        if k < 1:
            return done
        size = k * nbytes
        low = size - nbytes if down else 0  # a run going down starts at its top element
        try:
            value = (cpu.read(src.seg, si - low, size) if src is not None
                     else int.from_bytes(pattern * k, "little"))
            cpu.write(dst.seg, di - low, size, value)
        except (Fault, Unmapped):
            return done  # the element loop finds the exact faulting element
        moved = -size if down else size
        if src is not None:
            add_at_address_size(cpu, ESI, moved)
        add_at_address_size(cpu, EDI, moved)
        done = True
        if add_at_address_size(cpu, ECX, -k) == 0:
            return True  # the count ran out: no next run to work out (most calls)


@implements("MOVS")
def movs(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """ES:[eDI] := seg:[eSI]; eSI, eDI +/-= size."""
    delta = _step(cpu, dst.size)

    def once() -> None:
        dst.write(src.read())
        add_at_address_size(cpu, ESI, delta)
        add_at_address_size(cpu, EDI, delta)

    progressed = _runs(cpu) and _bulk(cpu, delta, src, dst, b"")
    _repeat(cpu, once, progressed=progressed)


@implements("CMPS")
def cmps(cpu: Cpu, first: Operand, second: Operand) -> None:
    """temp := seg:[eSI] - ES:[eDI], flags as SUB; eSI, eDI +/-= size (REPE/REPNE)."""
    delta = _step(cpu, first.size)

    def once() -> None:
        a, b = first.read(), second.read()
        cpu.flags.after_sub(a, b, a - b, first.size)
        add_at_address_size(cpu, ESI, delta)
        add_at_address_size(cpu, EDI, delta)

    _repeat(cpu, once, compares=True)


def _scan_bytes(cpu: Cpu, al: int, item: Operand) -> Tuple[bool, bool]:
    """REPNE/REPE SCASB going up (strlen, memchr) a run at a time; (progressed, ended).
    A run is searched with bytes methods; the flags are those of the last comparison,
    which is all the element loop would leave."""
    progressed = False
    while True:
        count = count_register(cpu)
        di = item.offset()
        k = min(count, _run_length(cpu, item.seg, di, 1))
        if k < 2:
            return progressed, False
        try:
            run = cpu.read(item.seg, di, k).to_bytes(k, "little")
        except (Fault, Unmapped):
            return progressed, False  # the element loop finds the exact faulting byte
        if cpu.insn.rep == "repne":
            stop = run.find(al)                         # first byte equal to AL
        else:
            stop = k - len(run.lstrip(bytes([al])))     # first byte different from AL
            stop = -1 if stop == k else stop
        compared = k if stop < 0 else stop + 1
        last = run[compared - 1]
        cpu.flags.after_sub(al, last, al - last, 8)
        add_at_address_size(cpu, EDI, compared)
        add_at_address_size(cpu, ECX, -compared)
        progressed = True
        if stop >= 0 or count == compared:
            return progressed, True


@implements("SCAS")
def scas(cpu: Cpu, acc: Operand, item: Operand) -> None:
    """temp := AL/eAX - ES:[eDI], flags as SUB; eDI +/-= size (REPE/REPNE)."""
    delta = _step(cpu, acc.size)

    def once() -> None:
        a, b = acc.read(), item.read()
        cpu.flags.after_sub(a, b, a - b, acc.size)
        add_at_address_size(cpu, EDI, delta)

    progressed = False
    if _runs(cpu) and delta == 1:
        progressed, ended = _scan_bytes(cpu, acc.read(), item)
        if ended:
            return
    _repeat(cpu, once, compares=True, progressed=progressed)


@implements("STOS")
def stos(cpu: Cpu, dst: Operand, acc: Operand) -> None:
    """ES:[eDI] := AL/eAX; eDI +/-= size."""
    delta = _step(cpu, dst.size)

    def once() -> None:
        dst.write(acc.read())
        add_at_address_size(cpu, EDI, delta)

    progressed = _runs(cpu) and _bulk(
        cpu, delta, None, dst, acc.read().to_bytes(abs(delta), "little"))
    _repeat(cpu, once, progressed=progressed)


@implements("LODS")
def lods(cpu: Cpu, acc: Operand, src: Operand) -> None:
    """AL/eAX := seg:[eSI]; eSI +/-= size (REP LODS is legal, if useless)."""
    delta = _step(cpu, acc.size)

    def once() -> None:
        acc.write(src.read())
        add_at_address_size(cpu, ESI, delta)

    _repeat(cpu, once)


@implements("INS")
def ins(cpu: Cpu, dst: Operand, port: Operand) -> None:
    """ES:[eDI] := IN(DX); eDI +/-= size. Protected mode checks CPL <= IOPL first."""
    delta = _step(cpu, dst.size)

    def once() -> None:
        dst.write(port_in(cpu, port.read(), dst.size))
        add_at_address_size(cpu, EDI, delta)

    _repeat(cpu, once)


@implements("OUTS")
def outs(cpu: Cpu, port: Operand, src: Operand) -> None:
    """OUT(DX) := seg:[eSI]; eSI +/-= size. Protected mode checks CPL <= IOPL first."""
    delta = _step(cpu, src.size)

    def once() -> None:
        port_out(cpu, port.read(), src.size, src.read())
        add_at_address_size(cpu, ESI, delta)

    _repeat(cpu, once)
