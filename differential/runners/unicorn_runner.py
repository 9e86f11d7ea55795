"""Run one case on Unicorn 2.1.4 and report it in the conventions of ``ground.case``.

Facts this adapter is built on (each checked against 2.1.4 by a test in
``differential/tests/test_unicorn_runner.py``):
- One engine per mode is reused. Between cases the CPU is reset with a context saved when
  the engine was new: after a fault that Unicorn reported through ``UC_HOOK_INTR`` the
  engine remembers the pending exception, and the next fault would escalate to #DF and a
  triple fault (unicorn issue #1883). Restoring the pristine context clears that.
- Memory is a fixed pool of physical frames, mapped once, and the software TLB is Unicorn's
  ``UC_TLB_VIRTUAL``: a ``UC_HOOK_TLB_FILL`` hook maps each of the case's linear pages to
  its frame and refuses every other page. A case then costs a TLB flush and one write and
  one read per page, where mapping, unmapping and protecting pages per case cost ~25-40 µs
  a pair (most of Unicorn's time: issue 18). A refused fill ends the run with
  ``UC_ERR_EXCEPTION`` (no interrupt is reported); the hook remembers the access type, so
  it is read as ``UC_ERR_{READ,WRITE,FETCH}_UNMAPPED``. Each page of an access that
  crosses pages is filled on its own, so a split access into a page outside the case is
  refused (with mapped-but-protected pages Unicorn checked only the first page).
  An instruction whose later bytes lie in a refused page faults on that fetch (as the CPU
  does: SDM Vol. 3A, Table 6-2, fetch faults outrank #UD), although the code hook already
  saw it start: a refused fetch in the instruction's own pages with EIP unmoved is its
  fault, not the fetch of the next instruction after it retired. The translator reads
  ahead up to the ``until`` address: for bytes longer than their instruction (random
  bytes Capstone cannot decode) that run into a refused page, ``until`` stops at the page
  end. When ``until`` is no instruction boundary of the bytes after the instruction, the
  translator reads on past it into the next page and faults before the instruction runs
  (issue 18's reserved-NOP findings); such a fetch fault before the code hook ran is
  retried with ``until`` 1, 2, ... bytes in, and the one at the instruction's end runs it
  (for the 15 bytes only Capstone-refused cases carry; a fault of the instruction's own
  bytes stays).
- ``mem_write`` does not invalidate translated code (blocks are keyed by virtual address
  and frame), so the code range is dropped from the translation cache before every run
  (``ctl_remove_cache``, which translates through the hook: run it after the table is set).
- Stepping uses our own code hook, not ``count=1``: ``count=1`` stops a REP string
  instruction after one iteration, whereas a real CPU completes it in one step. The ``until``
  address is set just past the instruction because the translator ends its block there;
  otherwise a page of zeros after the code becomes a 2,000-instruction block translated
  afresh for every case (~1 ms instead of ~40 µs).
- A case is one call into our C core (``unicorn_core.c``, built by ``unicorn_core.py``):
  context restore, page write, TLB flush, cache removal, register write (one
  ``uc_reg_write_batch``), the run, register read (one ``uc_reg_read_batch``) and frame
  read, with a mask of the pages the run changed. The code, TLB-fill, interrupt and
  memory hooks are C functions. Through ctypes each of those steps was a crossing of 1-3
  µs (a Python callback for each hook), ~25 µs of a ~45 µs case (issue 18). Only an
  instruction back at its own address (a REP round, a restart) asks Python
  (``_Engine._back_at_start``); what that raises stops the run, and ``run`` raises it.
- ``until`` is a stop compiled into the block translated at that address, and the block
  stays cached: a later case jumping there stops with interrupt 1 before the target
  runs, where the code hook would have stopped it. Interrupt 1 is never the
  instruction's own (TF is clear at the start) unless it is INT 1 or ICEBP, so any other
  interrupt 1 is one of Unicorn's stops, not a #DB: a stale stop reads as the hook's
  stop, and stale stops stay cached (dropping the previous case's cost a TLB fill, ~3 µs
  a case; outcomes unchanged on 12,000 campaign cases of both mixes).
- Exceptions: ``UC_HOOK_INTR`` gives the vector but not the error code; a fault leaves EIP
  at the instruction and a trap (INT n, INT3, INTO) after it, so EIP tells them apart. An
  invalid opcode surfaces as ``UC_ERR_INSN_INVALID`` (#UD), an access outside the mapped
  pages as ``UC_ERR_{READ,WRITE,FETCH}_UNMAPPED``; but a fetch error after the code hook
  saw the instruction start means the instruction retired and a jump's target (which a
  single step never fetches) is unmapped. HLT ends the run with no reason.
- An instruction that stores into its own bytes (ADD [BX+SI],AL at CS:0 with BX=SI=0) is
  abandoned before the store and restarted from a fresh translation (QEMU's precise
  self-modifying-code handling), so the code hook sees the same address twice with the
  state untouched. Such a restart is not a second instruction; a jump to itself, which
  also leaves the state untouched, is cut off after a few rounds with the same result.
  When the store did land and changed the bytes (also between two REP iterations),
  Unicorn would run the *new* bytes: the run stops there. Either way the outcome carries
  ``notes["self-modified"]``: only an agreement with the reference is taken at face
  value then (a real CPU finishes the instruction it fetched; see known_divergences.toml).
"""

from __future__ import annotations

import ctypes
import struct
import weakref
from array import array
from typing import Dict, Mapping, Optional, Sequence, Tuple

from unicorn import (
    UC_ARCH_X86,
    UC_CTL_IO_WRITE,
    UC_CTL_TB_REMOVE_CACHE,
    UC_CTL_TLB_FLUSH,
    UC_ERR_EXCEPTION,
    UC_ERR_FETCH_PROT,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_INSN_INVALID,
    UC_ERR_READ_PROT,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_PROT,
    UC_ERR_WRITE_UNMAPPED,
    UC_HOOK_CODE,
    UC_HOOK_INTR,
    UC_HOOK_MEM_READ,
    UC_HOOK_MEM_WRITE,
    UC_HOOK_TLB_FILL,
    UC_MEM_FETCH,
    UC_MEM_READ,
    UC_MEM_WRITE,
    UC_MODE_16,
    UC_MODE_32,
    UC_PROT_ALL,
    UC_TLB_VIRTUAL,
    Uc,
    UcError,
)
from unicorn import x86_const as X
from unicorn.unicorn_py3.unicorn import uclib

from differential.encoding import (
    MAX_INSTRUCTION_LENGTH,
    is_rep_string,
    may_branch,
    raises_debug,
)
from differential.runners.unicorn_core import (
    BACK_AT_START,
    GO_ON,
    REPORT_FIELDS,
    RESTARTED,
    STOP,
    core_library,
)
from ground.case import PAGE_SIZE, Case, Exc, Outcome, register_names

UNMAPPED_ERRORS = (UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_FETCH_UNMAPPED,
                   UC_ERR_READ_PROT, UC_ERR_WRITE_PROT, UC_ERR_FETCH_PROT)
FETCH_ERRORS = (UC_ERR_FETCH_UNMAPPED, UC_ERR_FETCH_PROT)
REFUSED = {UC_MEM_READ: UC_ERR_READ_UNMAPPED, UC_MEM_WRITE: UC_ERR_WRITE_UNMAPPED,
           UC_MEM_FETCH: UC_ERR_FETCH_UNMAPPED}  # a refused TLB fill, by access type
UD_VECTOR = 6
DEBUG_VECTOR = 1
MAX_REP_ITERATIONS = 1 << 20  # a REP over mapped pages ends far sooner; this bounds a bug
SELF_MODIFIED = "self-modified"  # Outcome.notes key: this outcome cannot be trusted
MAX_RESTARTS = 3  # self-modifying-code restarts allowed before a same-address hit counts
_UC_MODES = {"real16": UC_MODE_16, "prot32": UC_MODE_32}


class _RegisterFile:
    """The case's registers in 8-byte slots, as ``uc_reg_write_batch`` and
    ``uc_reg_read_batch`` take them (the core moves them in and out with one call each;
    the binding's per-register wrappers cost ~5 µs apiece, which alone halved
    throughput)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        count = len(self.names)
        ids = [getattr(X, f"UC_X86_REG_{n.upper()}") for n in self.names]
        self._ids = (ctypes.c_int32 * count)(*ids)
        self._values = (ctypes.c_uint64 * count)()  # what goes in
        # Read into slots of their own, zero from here on: Unicorn 2.1.4 stores 4 bytes of
        # a 32-bit register and 2 of a selector into its 8-byte slot, so the bytes above
        # stay zero and a read needs neither a zero fill nor a mask (~1-2 µs a case;
        # ``test_register_reads_leave_high_bytes_alone`` checks it).
        self._read = (ctypes.c_uint64 * count)()
        base = ctypes.addressof(self._read)
        self._read_ptrs = (ctypes.c_void_p * count)(*(base + 8 * i for i in range(count)))
        self._count = ctypes.c_int32(count)
        self._unpack = struct.Struct(f"={count}Q").unpack_from

    # The values move as whole slices: an index assignment per register cost ~2 µs a case.
    def put(self, regs: Mapping[str, int]) -> None:
        """The values the next run starts with."""
        self._values[:] = [regs[name] for name in self.names]

    def got(self) -> Dict[str, int]:
        """The values the last run (or ``read``) left."""
        return dict(zip(self.names, self._unpack(self._read)))

    def read(self, uc: Uc) -> Dict[str, int]:
        """The registers now, during a run (the code hook's rare path)."""
        _check(uclib.uc_reg_read_batch(uc._uch, self._ids, self._read_ptrs, self._count))
        return self.got()


def _check(status: int) -> None:
    if status:
        raise UcError(status)


class _Native:
    """Reads of the engine's memory straight through the C API, for the code hook's rare
    path (the binding's ``mem_read`` cost ~2.5 µs: argument encoding, a fresh buffer),
    and the ``uc_ctl`` codes the core uses to flush the TLB and drop translations."""

    _WRITE = UC_CTL_IO_WRITE << 30
    FLUSH = _WRITE | UC_CTL_TLB_FLUSH
    REMOVE = _WRITE | (2 << 26) | UC_CTL_TB_REMOVE_CACHE  # two arguments: begin, end

    def __init__(self, uc: Uc) -> None:
        self.handle = uc._uch
        self._bytes = ctypes.create_string_buffer(MAX_INSTRUCTION_LENGTH + 1)

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes at physical ``address`` (an instruction's bytes: the code hook
        reads them back on every REP iteration)."""
        buffer = self._bytes if size <= len(self._bytes) else ctypes.create_string_buffer(size)
        _check(uclib.uc_mem_read(self.handle, address, buffer, size))
        return buffer.raw[:size]


class _Engine:
    """One reusable Unicorn instance for one mode, with the hooks installed up front
    (hooks added after code was translated would not apply to it: unicorn #1606). A case
    runs through the C core (``unicorn_core.c``): one call sets the engine up, runs it
    and reads it back, and the hooks stay in C but for the code hook's rare question
    (``_back_at_start``)."""

    def __init__(self, mode: str, memory_hooks: bool) -> None:
        self.mode = mode
        self.uc = Uc(UC_ARCH_X86, _UC_MODES[mode])
        # A P6 (Pentium II), as the reference models, not the default Haswell: otherwise
        # C4/C5 with mod=11 decode as VEX and F3 0F BC/BD as TZCNT/LZCNT in Unicorn
        self.uc.ctl_set_cpu_model(X.UC_CPU_X86_PENTIUM2)
        self.regs = _RegisterFile(register_names(mode))
        self.uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        self.frames = 0  # physical frames mapped, at 0, PAGE_SIZE, ...
        self._frames_out = ctypes.create_string_buffer(0)  # the frames after a run
        self._report = (ctypes.c_int64 * len(REPORT_FIELDS))()
        self.pages: Mapping[int, bytes] = {}  # the case's pages as loaded, frame i the i-th
        self.start = 0
        self.steps = 0
        self.restarts = 0
        self.self_modified = False
        self.code = b""
        # (where the code's bytes lie when in one frame, REP string?, may branch?): only
        # the code hook's rare path back at the start needs them (``_facts``)
        self.facts: Optional[Tuple[Optional[int], bool, bool]] = None
        self.initial: Mapping[str, int] = {}
        self.interrupt: Optional[int] = None
        self.refused: Optional[int] = None  # access type of the last refused TLB fill
        self.refused_page = -1  # and its page
        self.changed = 0  # the core's mask of the pages the run stored into
        self.failure: Optional[BaseException] = None  # what the hook's question raised
        self.pristine = self.uc.context_save()
        self._core_lib = core_library()
        self._back = BACK_AT_START(self._back_at_start)  # lives as long as the engine
        self.core = self._core_lib.x86lab_core_new(
            self.uc._uch, self.pristine.context, _Native.FLUSH, _Native.REMOVE, UC_PROT_ALL,
            len(self.regs.names), ctypes.addressof(self.regs._ids),
            ctypes.addressof(self.regs._values), ctypes.addressof(self.regs._read), self._back)
        if not self.core:
            raise MemoryError("x86lab_core_new")
        # freed with the engine (a runner made per test would otherwise leak one each)
        self.freed = weakref.finalize(self, self._core_lib.x86lab_core_free, self.core)
        _check(self._core_lib.x86lab_core_hook(
            self.core, UC_HOOK_INTR, UC_HOOK_CODE, UC_HOOK_TLB_FILL,
            UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE if memory_hooks else 0))
        self.native = _Native(self.uc)

    def _back_at_start(self, address: int, steps: int) -> int:
        """The code hook's question when the instruction comes back to its own address
        (every REP round; a self-modifying restart; a jump to itself): STOP, GO_ON, or
        RESTARTED (go on, and that start was not a step). What it raises stops the run,
        and ``run`` raises it (ctypes would print it and go on)."""
        try:
            code = self.code
            frame, rep_string, branch = self.facts or self._facts()
            now = self.read_linear(address, len(code)) if frame is None else \
                self.native.read(frame, len(code))
            if code != now:
                # a restart, or a REP's next iteration, would run the *new* bytes
                self.self_modified = True
            elif rep_string and steps < MAX_REP_ITERATIONS:
                if frame is not None:  # the next rounds: the core asks while they differ
                    _check(self._core_lib.x86lab_core_rounds(
                        self.core, frame, code, len(code), MAX_REP_ITERATIONS))
                return GO_ON
            elif self.restarts < MAX_RESTARTS and self._untouched(self.uc):
                self.restarts += 1
                self.self_modified = True
                return RESTARTED
            elif not branch:
                self.self_modified = True  # restarted with part of its effects: stop
        except BaseException as exc:  # noqa: BLE001 - raised by run
            if self.failure is None:
                self.failure = exc
        return STOP

    def _facts(self) -> Tuple[Optional[int], bool, bool]:
        """``facts`` for this case, worked out when first needed: most cases never come
        back to their start, and these cost ~2 µs a case when worked out up front."""
        code, start = self.code, self.start
        offset, frame = start & (PAGE_SIZE - 1), self.frame_of(start & 0xFFFFF000)
        where = None if frame is None or offset + len(code) > PAGE_SIZE else frame + offset
        self.facts = (where, is_rep_string(code), may_branch(code))
        return self.facts

    def frame_of(self, page: int) -> Optional[int]:
        """Where the case's linear ``page`` lives (None: not one of its pages)."""
        for slot, base in enumerate(self.pages):
            if base == page:
                return slot * PAGE_SIZE
        return None

    def code_pages(self) -> Tuple[int, int]:
        """The pages this case's bytes lie in (first and last byte)."""
        last = max(len(self.code), 1) - 1
        return self.start & 0xFFFFF000, (self.start + last) & 0xFFFFF000

    def _untouched(self, uc: Uc) -> bool:
        now = self.regs.read(uc)
        return all(now[name] == value for name, value in self.initial.items())

    def run(self, case: Case, begin: int, end: int) -> Optional[int]:
        """Run ``case`` from linear ``begin`` to ``end`` (its pages in frames 0, 1, ...,
        more frames mapped once when a case has more pages than any before; earlier
        translations forgotten) and return emu_start's error (None: none). The report
        lands in ``steps``, ``interrupt``, ``refused``, ``refused_page``, ``changed``."""
        memory = case.memory
        if len(memory) > self.frames:
            self.uc.mem_map(self.frames * PAGE_SIZE, (len(memory) - self.frames) * PAGE_SIZE)
            self.frames = len(memory)
            self._frames_out = ctypes.create_string_buffer(self.frames * PAGE_SIZE)
        self.pages = memory
        self.regs.put(case.regs)
        self.start, self.restarts, self.initial = begin, 0, case.regs
        self.self_modified, self.code, self.facts = False, case.code, None
        report = self._report
        _check(self._core_lib.x86lab_core_run(
            self.core, b"".join(memory.values()), len(memory), _bases(memory), begin, end,
            begin + MAX_INSTRUCTION_LENGTH, ctypes.addressof(self._frames_out),
            ctypes.addressof(report)))
        status, self.steps, interrupt, refused, self.refused_page, self.changed = report
        self.interrupt = None if interrupt < 0 else interrupt
        self.refused = None if refused < 0 else refused
        if self.failure is not None:  # the hook's question raised (_back_at_start)
            failure, self.failure = self.failure, None
            raise failure
        return status or None

    def pages_after(self) -> Dict[int, bytes]:
        """The case's pages as the run left them, each unchanged one as the very object
        loaded (as ``reference.memory.SparseMemory.final`` gives them back): most cases
        store into none of their pages or one, and the core's mask of changed pages
        costs less than a copy of each page, which the comparison with the reference's
        pages then finds equal by identity (issue 18)."""
        changed = self.changed
        if not changed:
            return dict(self.pages)
        frames = memoryview(self._frames_out)
        out = {}
        for slot, (base, loaded) in enumerate(self.pages.items()):
            if changed >> min(slot, 63) & 1:  # bit 63 stands for every page from 63 on
                page = frames[slot * PAGE_SIZE:(slot + 1) * PAGE_SIZE].tobytes()
                out[base] = loaded if page == loaded else page
            else:
                out[base] = loaded
        return out

    def read_linear(self, address: int, size: int) -> bytes:
        """Bytes at a linear address through the case's pages, wrapping at 4 GiB as the
        CPU's fetch does; the read ends early at a page outside the case."""
        out = b""
        while len(out) < size:
            linear = (address + len(out)) & 0xFFFFFFFF
            frame = self.frame_of(linear & 0xFFFFF000)
            if frame is None:
                break
            offset = linear & (PAGE_SIZE - 1)
            count = min(size - len(out), PAGE_SIZE - offset)
            out += self.native.read(frame + offset, count)
        return out


def _bases(memory: Mapping[int, bytes]) -> bytes:
    """The case's linear pages as the core takes them: 32-bit words, in frame order."""
    return array("I", memory).tobytes()


assert array("I").itemsize == 4, "the core reads the pages' bases as uint32_t"


def linear_eip(mode: str, regs: Mapping[str, int]) -> int:
    """Where CS:EIP points: ``begin`` for ``emu_start`` (CS*16+IP in real mode, EIP in
    32-bit mode where Unicorn writes ``begin`` straight into EIP)."""
    eip = regs["eip"]
    if mode == "real16":
        return ((regs["cs"] << 4) + (eip & 0xFFFF)) & 0xFFFFFFFF
    return eip


def runner_name(memory_hooks: bool) -> str:
    """The name a ``UnicornRunner`` reports (verdicts and crash records carry it)."""
    return "unicorn+memhooks" if memory_hooks else "unicorn"


class UnicornRunner:
    """``UnicornRunner(memory_hooks=False).run(case) -> Outcome``."""

    def __init__(self, memory_hooks: bool = False) -> None:
        self.memory_hooks = memory_hooks
        self.name = runner_name(memory_hooks)
        self._engines: Dict[str, _Engine] = {}

    def _engine(self, mode: str) -> _Engine:
        engine = self._engines.get(mode)
        if engine is None:
            engine = self._engines[mode] = _Engine(mode, self.memory_hooks)
        return engine

    def run(self, case: Case) -> Outcome:
        """One step of ``case``. A fetch fault before the instruction started may be the
        translator's: it reads on past the instruction up to the stop address (the case's
        bytes can be longer than their instruction: random bytes Capstone cannot decode),
        and when the stop is no instruction boundary of the bytes that follow, it goes
        on into the next page. Stops 1, 2, ... bytes in are then tried: the one at the
        instruction's end ends the block there and the instruction runs (a fault of its
        own bytes faults at every stop and stands). Only bytes of the full 15 are tried:
        the generator trims every case to its instruction but those Capstone cannot
        decode, which keep all 15 (a FORMS case at a page edge would pay 1-14 runs)."""
        outcome, fetched_ahead = self._run(case, None)
        if not fetched_ahead or len(case.code) < MAX_INSTRUCTION_LENGTH:
            return outcome  # an instruction's own bytes (only raw bytes carry a tail)
        begin = linear_eip(case.mode, case.regs)
        for length in range(1, len(case.code)):
            retried, again = self._run(case, begin + length)
            if not again:
                return retried
        return outcome

    def _run(self, case: Case, stop: Optional[int]) -> Tuple[Outcome, bool]:
        """(outcome, whether a fetch faulted before the code hook saw the instruction
        start) with the stop address ``stop`` (default: just past the case's bytes)."""
        engine = self._engine(case.mode)
        begin = linear_eip(case.mode, case.regs)
        end = begin + max(len(case.code), 1) if stop is None else stop
        boundary = (begin | (PAGE_SIZE - 1)) + 1
        if end > boundary and boundary & 0xFFFFFFFF not in case.memory:
            end = boundary  # the translator reads up to ``end``: not into a refused page
        error = engine.run(case, begin, end)
        if error == UC_ERR_EXCEPTION and engine.refused is not None:
            error = REFUSED.get(engine.refused, error)
        regs = engine.regs.got()
        if error in FETCH_ERRORS and not engine.self_modified and \
                regs["eip"] == case.regs["eip"] and \
                engine.read_linear(begin, len(case.code)) != case.code:
            # it stored into its own bytes and Unicorn refetched them; the new bytes
            # faulted before the code hook saw them (a REP STOS whose new first byte
            # reaches into an unmapped page): the same restart, flagged the same way
            engine.self_modified = True
        memory = engine.pages_after()
        # Interrupt 1 is never this instruction's own, except for INT 1 and ICEBP: TF is
        # clear at the start, so no single-step trap is due. Unicorn reports it for its own
        # stops: a jump to exactly ``until`` (a stop compiled into that block), and, seen in
        # campaigns, some fetches after a far transfer (RET 66 c3 to page 0, IRET 67 cf).
        exception = self._exception(engine, error, case.regs["eip"], regs["eip"])
        notes = {SELF_MODIFIED: "stored into its own bytes; Unicorn restarted it"} \
            if engine.self_modified else {}
        fetched_ahead = error in FETCH_ERRORS and engine.steps == 0 and \
            engine.interrupt is None
        return Outcome(regs=regs, memory=memory, exception=exception, notes=notes), \
            fetched_ahead

    @staticmethod
    def _exception(engine: _Engine, error: Optional[int], eip_before: int,
                   eip_after: int) -> Optional[Exc]:
        if engine.interrupt == DEBUG_VECTOR and not raises_debug(engine.code):
            return None  # one of Unicorn's own stops, not a #DB of this instruction
        if engine.interrupt is not None:
            kind = "fault" if eip_after == eip_before else "trap"
            return Exc(vector=engine.interrupt, kind=kind)
        if error is None:
            return None
        if error == UC_ERR_INSN_INVALID:
            return Exc(vector=UD_VECTOR, kind="fault")
        own_bytes = eip_after == eip_before and engine.refused_page in engine.code_pages()
        if error in FETCH_ERRORS and engine.steps >= 1 and not own_bytes:
            return None  # the instruction retired; fetching the next one is not part of it
        if error in UNMAPPED_ERRORS:
            return Exc(vector=-1, kind="unmapped")
        raise UcError(error)
