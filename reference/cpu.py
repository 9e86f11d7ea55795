"""The CPU state and its one path to memory.

``Cpu`` holds the registers, EFLAGS (``cpu.flags``), segment registers with their bases,
the memory, and the small services semantics use: ``read``/``write`` (segment:offset),
``push``/``pop``, ``load_segment``. Every data access goes through ``read_linear`` /
``write_linear``: that is where paging translates (``reference.system.paging``, installed
when CR0.PG is set), and where the per-instruction write journal records old bytes so a
fault can roll memory back. ``step()`` lives in ``reference.step``; the system-level
mechanisms (control registers, descriptor tables, IDT delivery, paging, MSRs) live in
``reference.system``.
"""

from __future__ import annotations

import platform
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple, Union

from reference.faults import GP, Fault
from reference.faults import SS as SS_FAULT
from reference.flags import RESERVED_ONE, Flags
from reference.memory import FlatMemory, SparseMemory
from reference.operands import CS, DS, ES, FS, GS, SS
from reference.step import ReportAndStop, StepResult, run, step
from reference.system.debug_registers import Ranges, data_hits
from reference.x87.fpu import Fpu

CPYTHON_BLOCK_THRESHOLD = 300
BLOCK_THRESHOLD = 0 if platform.python_implementation() == "PyPy" else CPYTHON_BLOCK_THRESHOLD
"""Default ``Cpu.block_threshold``: executions of an instruction before a block is
compiled from it. Measured on the tiny image's boot to the prompt (51.3 M instructions,
``python -m reference.pc --block-threshold N``, load ~1-2): CPython 102 s without
blocks, 77 s at 40, 71 s at 300, 76 s at 1000 (a block costs ~2 ms to make from cached
per-instruction snippets; 84 % of the instructions then run in blocks). PyPy: 29 s
without, 74 s at 300, 45 s at 3000: its JIT already specialises the interpreter's loop,
and each generated function has to be warmed up again, so blocks are off there. Again
after the memory accesses were written out in blocks (2026-12-05, the trimmed image:
44.6 M instructions, ``x86lab bench --boot``, load 4-6): CPython 81 s interpreting, 56 s
with blocks; PyPy 38 s interpreting, 144 s with blocks made at 300 and 35 s with the
same blocks taken from the disk cache (making them is what costs PyPy). Why PyPy gains
nothing even from hot blocks (2026-12-07, tiny boot, 31.8 M instructions): a generated
function runs in PyPy's interpreter until its own trace pays, and that takes ~10^4
calls: 200 distinct 60-statement straight-line functions cost 5.2, 4.7, 5.3 and 0.65
µs a call when each is called 50, 400, 2,000 and 20,000 times (through
``residual_call``; CPython 3.2 µs), and a boot's blocks run hundreds to thousands of
times each. vmprof: 8 % of the time inside blocks was in compiled code with a warm
cache (threshold 40), 14 % with blocks only at 3,000 (41 blocks, 18.4 s against 13.4
s interpreting); the interpreter's loop spends 75 % of its time in compiled code.
Blocks only where the code loops back to the block's start, made at 1,000: 17.9-20.0 s
against 12.5-14.3 s (``compile_block`` alone, asked 4,469 times, took 3.3 s)."""
MAKER_BLOCK_THRESHOLD = 40
"""``Cpu.block_threshold`` under ``python -m reference.pc`` when a second process makes
the blocks (``reference.blocks.background``; ``--block-threshold`` still decides):
making a block then costs the PC's own process ~0.3 ms instead of ~8, so code run fewer
times pays. The tiny boot to the prompt, CPython, quiet machine, wall seconds (empty /
full block cache): 57.5 / 30.2-31.5 in-process at 300; with the maker 38.3 / 28.0-32.8
at 300, 34.7 / 25.8-30.1 at 100, 38.7 / 28.5-32.5 at 40 (its child fell behind: 5,729
blocks asked for, 5,133 made before the prompt). Down from 100 to 40 (2026-12-06) once
the maker stored every block it made (before, a block whose code had stopped running
by the time it came back was lost, and each warm boot asked for ~1,600 of them again)
and with lookups at ``CACHED_THRESHOLD`` 4: instructions interpreted on the way to the
prompt (128 MiB, 28.3 M in all; empty / full cache) 4.71 M / 2.52 M at 100 with lookups at 40,
4.28 M / 1.16 M at 40 with lookups at 4, 4.82 M / 0.98 M at 20 (its child fell behind:
7,782 asked, 6,758 made), 6.08 M / 0.82 M at 12; wall seconds in the same sequence
32.0 / 25.4, 25.1 at 100, 30.1 / 22.2, 22.2 at 40, 31.4 / 22.6, 22.5 at 20. Host
instructions of a whole warm boot in the PC's process (callgrind): 182.49 G at 100 / 40,
164.51 G at 40 / 4 (-9.9 %)."""
CACHED_THRESHOLD = 4
"""Executions of an instruction before its block is looked for in the disk cache
(``Cpu.block_cache``, ``reference.blocks.cache``): taking a block made by an earlier
run costs no compilation, so it pays much sooner than making one, and where no block
ever started the hint answers at once. Measured on the same boot (CPython, user CPU
seconds): threshold 300 alone 79 s with an empty cache and 70 s with a full one,
threshold 60 98 s and 53 s (load 7-13); threshold 300 with lookups at 40 74.7 s empty,
47.1 s and 45.8 s full (load 1-5, the same code, back to back). At 4 instead of 40
(2026-12-06, the maker at 40, full cache) a boot interprets 1.16 M instructions instead
of 2.24 M (``MAKER_BLOCK_THRESHOLD``)."""


class SelfModified(Exception):
    """A compiled block wrote to its own code page: its later instructions are stale."""

MODES = {"real16": 16, "prot32": 32}
# The hidden part of a segment register (SDM Vol. 3A, 3.4.3): ``attr`` holds the
# descriptor's access rights in LAR's layout (bits 8-23 of its high dword: type, S, DPL,
# P, AVL, D/B, G). Real mode: a present, writable, accessed data segment (CS too).
REAL_MODE_ATTR = 0x009300
FLAT_CODE_ATTR = 0xCF9B00  # the constructed prot32 model: 32-bit, 4 GiB, DPL 0
FLAT_DATA_ATTR = 0xCF9300
DB_BIT = 1 << 22  # D/B: 32-bit default operand/address size (CS), 32-bit stack (SS)
CR0_RESET = 0x60000010  # CD | NW | ET
CR0_FLAT = 0x00000033   # PE | MP | ET | NE
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


class SystemSegment:
    """LDTR or TR: a selector and the base/limit/type loaded from its GDT descriptor."""

    __slots__ = ("selector", "base", "limit", "attr")

    def __init__(self, selector: int = 0, base: int = 0, limit: int = 0xFFFF,
                 attr: int = 0) -> None:
        self.selector, self.base, self.limit, self.attr = selector, base, limit, attr

    def __repr__(self) -> str:
        return (f"SystemSegment({self.selector:#x}, base={self.base:#x}, "
                f"limit={self.limit:#x}, attr={self.attr:#x})")


class SegmentLoader:
    """How a protected-mode segment load finds its descriptor. The default has no
    descriptor tables: a null selector loads DS/ES/FS/GS (base unchanged), anything else
    raises #GP(selector). LGDT replaces it with the GDT/LDT reader
    (``reference.system.segmentation.DescriptorLoader``)."""

    tables = False

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

    remember_decoded = True
    """Whether a newly decoded instruction is filed under its bytes (``decoded_bytes``)
    for ``reference.step._recall`` to find at another address. A Cpu that meets no
    instruction twice may turn it off (the differential's reference runner)."""

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
        # seg_limit: the highest offset an access may reach; seg_wlimit: the same for
        # writes (-1 when the segment is not writable); seg_floor: the lowest offset (above
        # 0 only for expand-down data). A null selector in DS/ES/FS/GS gets limits -1, so
        # any use raises #GP(0) (SDM Vol. 3A, 3.4.2).
        real = mode == "real16"
        self.seg_limit: List[int] = [0xFFFF if real else 1 << 34] * 6
        self.seg_wlimit: List[int] = list(self.seg_limit)
        self.seg_floor: List[int] = [0] * 6
        self.seg_attr: List[int] = ([REAL_MODE_ATTR] * 6 if real else
                                    [FLAT_DATA_ATTR, FLAT_CODE_ATTR] + [FLAT_DATA_ATTR] * 4)
        self.stack_size = self.default_size  # SS.B
        self.cpl = 0
        # Control and system-table registers (SDM Vol. 3A, 2.4-2.5). real16 starts with
        # CR0's reset value (CD, NW, ET: Vol. 3A, 9.1.1); the flat prot32 model with the
        # CR0 Linux gives user code before paging (PE, MP, ET, NE), so x87 errors are #MF
        # as on the native oracle.
        self.cr0 = CR0_RESET if real else CR0_FLAT
        self.cr2 = 0
        self.cr3 = 0
        self.cr4 = 0
        self.gdtr: Tuple[int, int] = (0, 0xFFFF)  # (base, limit)
        self.idtr: Tuple[int, int] = (0, 0x3FF)
        self.ldtr = SystemSegment()
        self.tr = SystemSegment()
        self.msr: Dict[int, int] = {}
        self.dr: List[int] = [0, 0, 0, 0, 0xFFFF0FF0, 0x400]  # DR0-DR3, DR6, DR7
        # Data breakpoints (reference.system.debug_registers.watch, from DR7): the ranges
        # reads and writes match, empty while none is enabled; the DR6 B bits matched by
        # this instruction, which step() turns into a #DB trap after it.
        self.watch_reads: Ranges = ()
        self.watch_writes: Ranges = ()
        self.watch_hits = 0
        self.tlb = None  # a reference.system.tlb.Tlb while CR0.PG is set
        # Interrupt line and shadow (SDM Vol. 3A, 6.8.3): a device sets intr_requested
        # and provides intr_controller.acknowledge() -> vector; MOV SS, POP SS and STI
        # set interrupt_shadow so the next instruction runs before any interrupt.
        self.intr_requested = False
        self.intr_controller = None
        # NMI (6.7.1): a request delivers vector 2 whatever IF; further NMIs are held
        # off until the next IRET.
        self.nmi_requested = False
        self.nmi_blocked = False
        self.interrupt_shadow = False
        self.shutdown = False
        self.halted = False
        self.insn = None  # the instruction being executed (reference.isa.decoder.Insn)
        self.segment_loader = SegmentLoader()
        self.delivery = ReportAndStop()
        self.journal: List[Tuple[int, Union[bytes, bytearray]]] = []  # (physical, old bytes)
        self.seg_journal: List[Tuple[int, ...]] = []  # segment caches before a load
        self.icache: Dict[int, object] = {}  # physical address of CS:EIP -> decoded Insn
        self.fpu = Fpu()  # x87 state (reference/x87/fpu.py); FNINIT values
        self.code_pages: Dict[int, List[int]] = {}  # page -> cached addresses in it
        # CS.D (16 or 32) -> the instructions decoded so far, by their bytes (a trie: one
        # dict per byte), which reference.step copies for the same bytes elsewhere
        self.decoded_bytes: Dict[int, dict] = {16: {}, 32: {}}
        self.tsc = 0  # instructions retired; RDTSC may read it
        self.in_blocks = 0  # of them, retired inside compiled blocks (reference.blocks)
        self.last_run_steps = 0  # steps the last run() took (reference.step.run)
        # The block compiler (reference.blocks): a block is compiled from an instruction
        # once the fast path has run it this often (0: never); the block running now.
        self.block_threshold = BLOCK_THRESHOLD
        self.cached_threshold = CACHED_THRESHOLD
        self.running_block = None
        self.block_cache = None  # a reference.blocks.cache.BlockCache: blocks kept on disk
        # a reference.blocks.background.Maker: blocks made by a second process (the PC's)
        self.block_maker = None

    def reset(self, mode: Optional[str] = None, memory: Optional[Memory] = None) -> None:
        """Put this Cpu back in exactly the state ``Cpu(memory, mode)`` starts in (by
        default its own memory and mode), whatever the last instruction did: the
        differential runs one instruction per case and built a Cpu per case: reusing
        one took a FORMS case from 42.8 to 36.2 µs on CPython (issue 18), more than the
        ~3 µs a Cpu takes to build, as a Cpu per case also left cyclic garbage (decoded
        operands refer to their Cpu) for the collector. The state of a fresh Cpu of
        that mode is copied once (``_Fresh``); the instance's attribute dict is replaced
        by a copy of it, its immutable values shared and its lists, dicts and objects
        made anew, so attributes a Cpu gained since (paging's access methods, installed
        on the instance) go with the old dict. Copying the whole dict costs less than
        writing each attribute back into the old one (reference: 236.4k -> 231.6k
        instructions a differential case, issue 18). The memory is not touched: load
        the next case's pages into it (or pass another). Checked whole-state against
        fresh Cpus after cases that fault, write memory, load segments, change flags,
        the x87 state and paging (``differential/tests/test_cpu_reset.py``)."""
        fresh = _FRESH.get(self.mode if mode is None else mode)
        if fresh is None:
            fresh = _Fresh(self.mode if mode is None else mode)
        state = fresh.state.copy()
        for name, make in fresh.makers:
            state[name] = make()
        state["mem"] = self.mem if memory is None else memory
        self.__dict__ = state

    # -- registers by name ---------------------------------------------------------
    def get_reg(self, name: str) -> int:
        """Read a register by its lower-case name: eax, ax, al, ah, eip, eflags, cs..gs."""
        if name in REGISTERS:
            index, shift, size = REGISTERS[name]
            return (self.regs[index] >> shift) & _SHIFT_MASK[size]
        if name not in ACCESSORS:
            raise KeyError(f"unknown register {name!r}")
        return ACCESSORS[name].get(self)

    def set_reg(self, name: str, value: int) -> None:
        """Write a register by name. Writing a segment register in real16 sets its base
        to selector*16; in prot32 only the selector is stored (flat segments, base 0)."""
        if name in REGISTERS:
            index, shift, size = REGISTERS[name]
            mask = _SHIFT_MASK[size] << shift
            self.regs[index] = (self.regs[index] & ~mask) | ((value << shift) & mask)
        elif name in ACCESSORS:
            ACCESSORS[name].set(self, value)
        else:
            raise KeyError(f"unknown register {name!r}")

    def load_segment(self, index: int, selector: int) -> None:
        """MOV Sreg / POP Sreg: real and virtual-8086 mode set base = selector * 16
        (limit and attributes stay: the hidden cache keeps them, SDM Vol. 3A, 9.9.1;
        in virtual-8086 mode they are 64 KiB, 16-bit since its entry, Vol. 3B 20.1.1);
        protected mode asks the segment loader (descriptor tables)."""
        selector &= 0xFFFF
        self.save_segment(index)
        if self.mode != "prot32":
            self.sregs[index] = selector
            self.seg_base[index] = selector << 4
        else:
            self.segment_loader.load(self, index, selector)

    def save_segment(self, index: int) -> None:
        """Journal segment register ``index`` (selector and hidden cache) and the CPL
        before a load, so a fault later in the instruction restores them."""
        self.seg_journal.append((index, self.sregs[index], self.seg_base[index],
                                 self.seg_limit[index], self.seg_wlimit[index],
                                 self.seg_floor[index], self.seg_attr[index], self.cpl))

    def set_segment_cache(self, index: int, selector: int, base: int, limit: int,
                          attr: int) -> None:
        """Load a segment register and its hidden part from a descriptor's fields:
        ``limit`` already scaled by G; ``attr`` in LAR layout. Derives the write limit
        (read-only data and code cannot be written), the expand-down range, and the
        default sizes that CS.D and SS.B choose."""
        self.save_segment(index)
        self.sregs[index] = selector
        self.seg_base[index] = base & 0xFFFFFFFF
        kind = (attr >> 8) & 0xF
        code = kind & 8
        if not code and kind & 4:  # expand-down data: offsets limit+1 .. 64K/4G - 1
            self.seg_floor[index] = limit + 1
            limit = 0xFFFFFFFF if attr & DB_BIT else 0xFFFF
        else:
            self.seg_floor[index] = 0
        self.seg_limit[index] = limit
        self.seg_wlimit[index] = -1 if code or not kind & 2 else limit
        self.seg_attr[index] = attr
        self.derive_sizes()

    def set_null_segment(self, index: int, selector: int) -> None:
        """A null selector in DS/ES/FS/GS: loads, but any access through it is #GP(0)."""
        self.save_segment(index)
        self.sregs[index] = selector
        self.seg_limit[index] = self.seg_wlimit[index] = -1
        self.seg_floor[index] = 0
        self.seg_attr[index] = 0

    def derive_sizes(self) -> None:
        """CS.D picks the default operand/address size, SS.B the stack width. A change
        of CS.D changes how bytes decode, so decoded instructions are forgotten."""
        size = 32 if self.seg_attr[CS] & DB_BIT else 16
        # (Only CS.D: the fetch's U/S check at another CPL is the TLB's business, since
        # decoded code is cached by physical address and found through its fast map.)
        if size != self.default_size:
            self.default_size = size
            self.forget_all_code()
        self.stack_size = 32 if self.seg_attr[SS] & DB_BIT else 16

    # -- memory: the one path --------------------------------------------------------
    # Without paging a linear address is the physical one. ``reference.system.paging``
    # replaces these three methods on the instance while CR0.PG is set.
    def read_linear(self, linear: int, nbytes: int) -> int:
        return self.mem.read_int(linear & 0xFFFFFFFF, nbytes)

    def write_linear(self, linear: int, nbytes: int, value: int) -> None:
        self.write_physical(linear & 0xFFFFFFFF, nbytes, value)

    def read_system(self, linear: int, nbytes: int) -> int:
        """An implicit supervisor read (descriptor tables, IDT, TSS): with paging, the
        U/S bits do not apply to it whatever the CPL (SDM Vol. 3A, 4.6)."""
        return self.mem.read_int(linear & 0xFFFFFFFF, nbytes)

    def write_system(self, linear: int, nbytes: int, value: int) -> None:
        """An implicit supervisor write (a descriptor's accessed bit, a TSS field)."""
        self.write_physical(linear & 0xFFFFFFFF, nbytes, value)

    def write_physical(self, physical: int, nbytes: int, value: int) -> None:
        """Store at a physical address, journal the old bytes, forget code there."""
        old = self.mem.exchange(physical, nbytes, value & ((1 << (8 * nbytes)) - 1))
        self.journal.append((physical, old))
        code_pages = self.code_pages
        if code_pages:
            page = physical >> 12
            if page in code_pages:
                self.forget_code(page)
            last = (physical + nbytes - 1) >> 12
            if last != page and last in code_pages:
                self.forget_code(last)

    def forget_all_code(self) -> None:
        """Drop every decoded instruction: what decoding depends on changed (CS.D, the
        mode, the linear-to-physical mapping)."""
        self.icache.clear()
        self.code_pages.clear()

    def forget_code(self, page: int) -> None:
        """Drop decoded instructions that lie in physical ``page`` (a write there may
        change them: self-modifying code). Device DMA must call this too when it writes
        memory. ``code_pages`` maps a physical page to the (physical) cache keys of the
        instructions decoded from it, so a write through any alias finds them."""
        addresses = self.code_pages.pop(page, None)
        if addresses:
            for address in addresses:
                self.icache.pop(address, None)
            running = self.running_block
            if running is not None and page in running.pages:
                raise SelfModified(page)  # run() replays the block through step()

    def fetch_byte(self, linear: int) -> int:
        """One instruction byte (the decoder wraps addresses at 4 GiB, as Unicorn mostly
        does: with memory hooks it sometimes reports such a fetch as unmapped). With
        paging this is the second place that translates (access type "fetch")."""
        return self.mem.read_int(linear, 1, "fetch")

    def code_physical(self, linear: int) -> int:
        """The physical address of code at ``linear`` (identity without paging)."""
        return linear

    def read(self, seg: int, offset: int, nbytes: int) -> int:
        """Read ``nbytes`` at ``seg``:``offset`` (segment register index, offset)."""
        if offset + nbytes - 1 > self.seg_limit[seg] or offset < self.seg_floor[seg]:
            self._beyond_limit(seg)
        if self.watch_reads:  # a data breakpoint on reads (DR7 R/W = 11) is armed
            self.watch_hits |= data_hits(self.watch_reads, self.seg_base[seg] + offset, nbytes)
        return self.read_linear(self.seg_base[seg] + offset, nbytes)

    def write(self, seg: int, offset: int, nbytes: int, value: int) -> None:
        """Write ``nbytes`` of ``value`` at ``seg``:``offset``."""
        if offset + nbytes - 1 > self.seg_wlimit[seg] or offset < self.seg_floor[seg]:
            self._beyond_limit(seg)
        if self.watch_writes:  # a data breakpoint on writes (DR7 R/W = 01 or 11) is armed
            self.watch_hits |= data_hits(self.watch_writes, self.seg_base[seg] + offset, nbytes)
        self.write_linear(self.seg_base[seg] + offset, nbytes, value)

    @staticmethod
    def _beyond_limit(seg: int) -> None:
        """An access outside the segment's range (beyond the limit, below an
        expand-down floor, a write to a read-only segment, any use of a null selector):
        #SS(0) for the stack segment, #GP(0) otherwise (SDM Vol. 3A, 5.3 and 21.1.x;
        a word at offset 0xFFFF faults on the 386 and later instead of wrapping)."""
        raise Fault(SS_FAULT if seg == SS else GP, 0)

    def rollback(self) -> None:
        """Undo this instruction's memory writes and segment loads (newest first)."""
        for linear, old in reversed(self.journal):
            self.mem.write_bytes(linear, old)
        self.journal.clear()
        if self.seg_journal:
            for entry in reversed(self.seg_journal):
                index = entry[0]
                (self.sregs[index], self.seg_base[index], self.seg_limit[index],
                 self.seg_wlimit[index], self.seg_floor[index], self.seg_attr[index],
                 self.cpl) = entry[1:]
            self.seg_journal.clear()
            self.derive_sizes()

    # -- the stack (SS:eSP, width = SS.B) ---------------------------------------------
    def push(self, value: int, size: int) -> None:
        """PUSH of a ``size``-bit value: decrement eSP, then store at SS:eSP."""
        nbytes = size >> 3
        if self.stack_size == 32:
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
        mask = 0xFFFFFFFF if self.stack_size == 32 else 0xFFFF
        return self.read(SS, (self.regs[4] + delta) & mask, size >> 3)

    def adjust_sp(self, delta: int) -> None:
        """eSP += delta at the stack's width (SP alone in a 16-bit stack)."""
        if self.stack_size == 32:
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


class Accessor(NamedTuple):
    """How ``get_reg``/``set_reg`` read and write one register that is not a general
    one (EIP, EFLAGS, a segment register): ``get(cpu)``, ``set(cpu, value)``."""

    get: Callable[[Cpu], int]
    set: Callable[[Cpu, int], None]


def _get_eip(cpu: Cpu) -> int:
    return cpu.eip


def _set_eip(cpu: Cpu, value: int) -> None:
    cpu.eip = value & 0xFFFFFFFF


def _get_eflags(cpu: Cpu) -> int:
    return cpu.flags.value | RESERVED_ONE


def _set_eflags(cpu: Cpu, value: int) -> None:
    cpu.flags = Flags(value)


def _segment_register(index: int) -> Accessor:
    """Segment register ``index``: writing it in real16 (and virtual-8086 mode) sets its
    base to selector*16; in the flat prot32 model only the selector is stored (base 0),
    and CS.RPL is the CPL the model runs at."""

    def get(cpu: Cpu) -> int:
        return cpu.sregs[index]

    def put(cpu: Cpu, value: int) -> None:
        cpu.sregs[index] = value & 0xFFFF
        if cpu.mode != "prot32":  # real-address and virtual-8086 mode
            cpu.seg_base[index] = (value & 0xFFFF) << 4
        elif index == CS:
            cpu.cpl = value & 3

    return Accessor(get, put)


ACCESSORS: Dict[str, Accessor] = {
    "eip": Accessor(_get_eip, _set_eip),
    "eflags": Accessor(_get_eflags, _set_eflags),
    **{name: _segment_register(index) for index, name in enumerate(SEG_NAMES)},
}
"""The registers beyond the general ones, by name. A caller that sets and reads the
same registers for case after case (the differential's reference runner) looks their
accessors up once instead of going through ``set_reg``'s tests of the name each time:
~0.4 µs a register, eight of them in a real16 case (issue 18)."""


_SCALARS = (int, bool, str, float, type(None), tuple, frozenset)


class _Fresh:
    """What ``Cpu.reset`` sets, taken from a fresh ``Cpu`` of one mode: its attribute
    dict (``state``: the immutable values are shared, every other value is replaced
    before use), and for each attribute not holding an immutable value a maker of an
    equal new value. A value it cannot remake faithfully (an object whose class called
    without arguments differs from it, a container of mutable things) raises at once,
    so an attribute added to ``Cpu.__init__`` cannot be left behind by ``reset``
    unnoticed."""

    def __init__(self, mode: str) -> None:
        cpu = Cpu(SparseMemory(), mode)
        self.state: Dict[str, object] = dict(vars(cpu))
        self.makers: List[Tuple[str, Callable[[], object]]] = [
            (name, _maker(name, value)) for name, value in vars(cpu).items()
            if name != "mem" and not isinstance(value, _SCALARS)]
        _FRESH[mode] = self


_FRESH: Dict[str, _Fresh] = {}


def _maker(name: str, value: object) -> Callable[[], object]:
    """A function returning a new value equal to ``value`` (see ``_Fresh``)."""
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        if all(isinstance(item, _SCALARS) for item in items):
            return value.copy
        if isinstance(value, dict) and all(item == {} for item in items):
            keys = tuple(value)  # decoded_bytes: one empty trie per code size
            return lambda: {key: {} for key in keys}
    else:
        kind = type(value)
        try:
            same = _fields(kind()) == _fields(value)
        except TypeError:  # needs arguments
            same = False
        if same:
            return kind
    raise TypeError(f"Cpu.reset cannot remake {name}={value!r}: teach _maker how")


def _fields(value: object) -> Dict[str, object]:
    """An object's attributes, from its ``__dict__`` or its ``__slots__``."""
    if hasattr(value, "__dict__"):
        return dict(vars(value))
    return {slot: getattr(value, slot) for slot in getattr(type(value), "__slots__", ())}


__all__ = ["Cpu", "Accessor", "ACCESSORS", "SegmentLoader", "GPR_NAMES", "SEG_NAMES", "CS",
           "DS", "ES", "SS"]
