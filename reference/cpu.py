"""The CPU state and its one path to memory.

``Cpu`` holds the registers, EFLAGS (``cpu.flags``), segment registers with their bases,
the memory, and the small services semantics use: ``read``/``write`` (segment:offset),
``push``/``pop``, ``load_segment``. Every data access goes through ``read_linear`` /
``write_linear``: that is where paging will translate, and where the per-instruction
write journal records old bytes so a fault can roll memory back. ``step()`` lives in
``reference.step``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

from reference.faults import GP, Fault
from reference.faults import SS as SS_FAULT
from reference.flags import RESERVED_ONE, Flags
from reference.memory import FlatMemory, SparseMemory
from reference.operands import CS, DS, ES, FS, GS, SS
from reference.step import ReportAndStop, StepResult, run, step

MODES = {"real16": 16, "prot32": 32}
GPR_NAMES = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
SEG_NAMES = ("es", "cs", "ss", "ds", "fs", "gs")
_SHIFT_MASK = {8: 0xFF, 16: 0xFFFF, 32: 0xFFFFFFFF}


def _register_names() -> Dict[str, Tuple[int, int, int]]:
    """name -> (register index, bit shift, size) for the 32/16/8-bit general registers."""
    names: Dict[str, Tuple[int, int, int]] = {}
    for index, name in enumerate(GPR_NAMES):
        names[name] = (index, 0, 32)
        names[name[1:]] = (index, 0, 16)
    for index, letter in enumerate("acdb"):
        names[letter + "l"] = (index, 0, 8)
        names[letter + "h"] = (index, 8, 8)
    return names


REGISTERS = _register_names()
Memory = Union[SparseMemory, FlatMemory]


class SegmentLoader:
    """How a protected-mode segment load finds its descriptor. The default has no
    descriptor tables: a null selector loads DS/ES/FS/GS (base unchanged), anything else
    raises #GP(selector). The system level replaces it with a GDT/LDT reader."""

    def load(self, cpu: Cpu, index: int, selector: int) -> None:
        if selector & 0xFFFC == 0 and index in (DS, ES, FS, GS):
            cpu.sregs[index] = selector
            return
        raise Fault(GP, selector & 0xFFFC)


class Cpu:
    """An IA-32 processor in ``real16`` (real-address mode) or ``prot32`` (flat 32-bit
    protected mode, CPL 0, all segment bases 0).

    Registers: ``regs`` (8 ints, EAX..EDI order), ``eip``, ``flags.value`` (EFLAGS),
    ``sregs`` (selectors, ES CS SS DS FS GS order), ``seg_base`` and ``seg_limit``
    (their bases and limits). Pluggable parts for the system level: ``delivery`` (what
    a fault or trap does: reference.step.ReportAndStop, reference.interrupts...),
    ``segment_loader`` (protected-mode selector loads), and ``read_linear`` /
    ``write_linear`` (where paging will go).
    """

    def __init__(self, memory: Memory, mode: str = "prot32") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
        self.mem = memory
        self.mode = mode
        self.default_size = MODES[mode]  # CS.D and SS.B: operand, address, stack size
        self.regs: List[int] = [0] * 8
        self.eip = 0
        self.flags = Flags(RESERVED_ONE)
        self.sregs: List[int] = [0] * 6
        self.seg_base: List[int] = [0] * 6
        # Real mode keeps the 64 KiB limits set at reset. The flat model's 4 GiB limit is
        # not checked: an access wrapping past 4 GiB wraps (as Unicorn does; whether a CPU
        # raises #GP there is not settled here), hence a limit above any offset.
        self.seg_limit: List[int] = [0xFFFF if mode == "real16" else 1 << 34] * 6
        self.halted = False
        self.insn = None  # the instruction being executed (reference.isa.decoder.Insn)
        self.segment_loader = SegmentLoader()
        self.delivery = ReportAndStop()
        self.journal: List[Tuple[int, bytes]] = []  # (linear, old bytes) of this insn
        self.seg_journal: List[Tuple[int, int, int]] = []  # (index, selector, base)
        self.icache: Dict[int, object] = {}  # linear EIP -> decoded Insn
        self.code_pages: Dict[int, List[int]] = {}  # page -> cached addresses in it
        self.tsc = 0  # instructions retired; RDTSC may read it

    # -- registers by name ---------------------------------------------------------
    def get_reg(self, name: str) -> int:
        """Read a register by its lower-case name: eax, ax, al, ah, eip, eflags, cs..gs."""
        if name in REGISTERS:
            index, shift, size = REGISTERS[name]
            return (self.regs[index] >> shift) & _SHIFT_MASK[size]
        if name == "eip":
            return self.eip
        if name == "eflags":
            return self.flags.value | RESERVED_ONE
        if name in SEG_NAMES:
            return self.sregs[SEG_NAMES.index(name)]
        raise KeyError(f"unknown register {name!r}")

    def set_reg(self, name: str, value: int) -> None:
        """Write a register by name. Writing a segment register in real16 sets its base
        to selector*16; in prot32 only the selector is stored (flat segments, base 0)."""
        if name in REGISTERS:
            index, shift, size = REGISTERS[name]
            mask = _SHIFT_MASK[size] << shift
            self.regs[index] = (self.regs[index] & ~mask) | ((value << shift) & mask)
        elif name == "eip":
            self.eip = value & 0xFFFFFFFF
        elif name == "eflags":
            self.flags = Flags(value)
        elif name in SEG_NAMES:
            index = SEG_NAMES.index(name)
            self.sregs[index] = value & 0xFFFF
            if self.mode == "real16":
                self.seg_base[index] = (value & 0xFFFF) << 4
        else:
            raise KeyError(f"unknown register {name!r}")

    def load_segment(self, index: int, selector: int) -> None:
        """MOV Sreg / POP Sreg: real mode sets base = selector * 16; protected mode asks
        the segment loader (descriptor tables)."""
        selector &= 0xFFFF
        self.seg_journal.append((index, self.sregs[index], self.seg_base[index]))
        if self.mode == "real16":
            self.sregs[index] = selector
            self.seg_base[index] = selector << 4
        else:
            self.segment_loader.load(self, index, selector)

    # -- memory: the one path --------------------------------------------------------
    def read_linear(self, linear: int, nbytes: int) -> int:
        return self.mem.read_int(linear & 0xFFFFFFFF, nbytes)

    def write_linear(self, linear: int, nbytes: int, value: int) -> None:
        linear &= 0xFFFFFFFF
        old = self.mem.read_bytes(linear, nbytes, "write")
        self.mem.write_int(linear, nbytes, value & ((1 << (8 * nbytes)) - 1))
        self.journal.append((linear, old))
        if self.code_pages:
            self.forget_code(linear >> 12)
            self.forget_code((linear + nbytes - 1) >> 12)

    def forget_code(self, page: int) -> None:
        """Drop decoded instructions that lie in ``page`` (a write there may change them:
        self-modifying code). Device DMA must call this too when it writes memory."""
        addresses = self.code_pages.pop(page, None)
        if addresses:
            for address in addresses:
                self.icache.pop(address, None)

    def fetch_byte(self, linear: int) -> int:
        """One instruction byte (the decoder wraps addresses at 4 GiB, as Unicorn mostly
        does: with memory hooks it sometimes reports such a fetch as unmapped). With
        paging this is the second place that translates (access type "fetch")."""
        return self.mem.read_int(linear, 1, "fetch")

    def read(self, seg: int, offset: int, nbytes: int) -> int:
        """Read ``nbytes`` at ``seg``:``offset`` (segment register index, offset)."""
        if offset + nbytes - 1 > self.seg_limit[seg]:
            self._beyond_limit(seg)
        return self.read_linear(self.seg_base[seg] + offset, nbytes)

    def write(self, seg: int, offset: int, nbytes: int, value: int) -> None:
        """Write ``nbytes`` of ``value`` at ``seg``:``offset``."""
        if offset + nbytes - 1 > self.seg_limit[seg]:
            self._beyond_limit(seg)
        self.write_linear(self.seg_base[seg] + offset, nbytes, value)

    @staticmethod
    def _beyond_limit(seg: int) -> None:
        """An access that does not fit below the segment limit: #SS(0) for the stack
        segment, #GP(0) otherwise (SDM Vol. 3A, 21.1.x real-address mode exceptions;
        a word at offset 0xFFFF faults on the 386 and later instead of wrapping)."""
        raise Fault(SS_FAULT if seg == SS else GP, 0)

    def rollback(self) -> None:
        """Undo this instruction's memory writes and segment loads (newest first)."""
        for linear, old in reversed(self.journal):
            self.mem.write_bytes(linear, old)
        self.journal.clear()
        for index, selector, base in reversed(self.seg_journal):
            self.sregs[index], self.seg_base[index] = selector, base
        self.seg_journal.clear()

    # -- the stack (SS:eSP, width = SS.B, here the mode's default size) ---------------
    def push(self, value: int, size: int) -> None:
        """PUSH of a ``size``-bit value: decrement eSP, then store at SS:eSP."""
        nbytes = size >> 3
        if self.default_size == 32:
            sp = (self.regs[4] - nbytes) & 0xFFFFFFFF
            self.write(SS, sp, nbytes, value)
            self.regs[4] = sp
        else:
            sp = (self.regs[4] - nbytes) & 0xFFFF
            self.write(SS, sp, nbytes, value)
            self.regs[4] = (self.regs[4] & 0xFFFF0000) | sp

    def pop(self, size: int) -> int:
        """POP of a ``size``-bit value: load from SS:eSP, then increment eSP."""
        value = self.peek(size)
        self.adjust_sp(size >> 3)
        return value

    def peek(self, size: int, delta: int = 0) -> int:
        """Read ``size`` bits at SS:(eSP + delta) without moving eSP."""
        mask = 0xFFFFFFFF if self.default_size == 32 else 0xFFFF
        return self.read(SS, (self.regs[4] + delta) & mask, size >> 3)

    def adjust_sp(self, delta: int) -> None:
        """eSP += delta at the stack's width (SP alone in a 16-bit stack)."""
        if self.default_size == 32:
            self.regs[4] = (self.regs[4] + delta) & 0xFFFFFFFF
        else:
            sp = (self.regs[4] + delta) & 0xFFFF
            self.regs[4] = (self.regs[4] & 0xFFFF0000) | sp

    # -- running -------------------------------------------------------------------
    def step(self) -> StepResult:
        """Execute one instruction; see ``reference.step.step``."""
        return step(self)

    def run(self, limit: int) -> Optional[StepResult]:
        """Step until an exception/halt or ``limit`` instructions; returns the last
        StepResult that stopped it, or None."""
        return run(self, limit)


__all__ = ["Cpu", "SegmentLoader", "GPR_NAMES", "SEG_NAMES", "CS", "DS", "ES", "SS"]
