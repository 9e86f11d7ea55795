"""Run one case on Unicorn 2.1.4 and report it in the conventions of ``ground.case``.

Facts this adapter is built on (each checked against 2.1.4 by a test in
``differential/tests/test_unicorn_runner.py``):
- One engine per mode is reused. Between cases the CPU is reset with a context saved when
  the engine was new: after a fault that Unicorn reported through ``UC_HOOK_INTR`` the
  engine remembers the pending exception, and the next fault would escalate to #DF and a
  triple fault (unicorn issue #1883). Restoring the pristine context clears that.
- A page protected to no access stays readable through a softmmu TLB entry:
  ``mem_protect`` does not drop it, ``ctl_remove_cache`` fills one (it looks the range up
  as code) and so does an access refused with *_PROT (the next run of the same case then
  reads the page). The TLB is flushed last before a run after any of these.
- An access split across two pages is checked against the first page's permissions only:
  it reads or writes a revoked second page (also page 0 after 0xFFFFF000) as if it were
  open. So the neighbours of a case's pages are unmapped, never merely revoked.
- ``mem_write`` does not invalidate translated code, so the code range is dropped from the
  translation cache before every run (``ctl_remove_cache``).
- Stepping uses our own code hook, not ``count=1``: ``count=1`` stops a REP string
  instruction after one iteration, whereas a real CPU completes it in one step. The ``until``
  address is set just past the instruction because the translator ends its block there;
  otherwise a page of zeros after the code becomes a 2,000-instruction block translated
  afresh for every case (~1 ms instead of ~40 µs).
- Registers move through one ``uc_reg_read_batch`` / ``uc_reg_write_batch`` call each:
  the binding's per-register wrappers cost ~5 µs apiece, which alone halved throughput.
- ``until`` is a stop compiled into the block translated at that address, and the block
  stays cached: a later case jumping there would stop with interrupt 1. The previous
  case's ``until`` is dropped from the cache before each run. Interrupt 1 is never the
  instruction's own (TF is clear at the start) unless it is INT 1 or ICEBP, so any other
  interrupt 1 is one of Unicorn's stops, not a #DB.
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
from typing import Dict, Mapping, Optional, Sequence

from unicorn import (
    UC_ARCH_X86,
    UC_CTL_IO_WRITE,
    UC_CTL_TLB_FLUSH,
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
    UC_MODE_16,
    UC_MODE_32,
    UC_PROT_ALL,
    UC_PROT_NONE,
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
from ground.case import PAGE_SIZE, Case, Exc, Outcome, register_names

UNMAPPED_ERRORS = (UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_FETCH_UNMAPPED,
                   UC_ERR_READ_PROT, UC_ERR_WRITE_PROT, UC_ERR_FETCH_PROT)
FETCH_ERRORS = (UC_ERR_FETCH_UNMAPPED, UC_ERR_FETCH_PROT)
PROT_ERRORS = (UC_ERR_READ_PROT, UC_ERR_WRITE_PROT, UC_ERR_FETCH_PROT)
MAX_MAPPED_PAGES = 12  # beyond this, start over: map/protect slow down as regions grow
# (measured, Unicorn alone on generated cases, loaded machine: 64 -> ~400 cases/s,
# 8 -> ~1500, 12 -> ~2100 with the prot32 pool pages always present)
UD_VECTOR = 6
DEBUG_VECTOR = 1
MAX_REP_ITERATIONS = 1 << 20  # a REP over mapped pages ends far sooner; this bounds a bug
SELF_MODIFIED = "self-modified"  # Outcome.notes key: this outcome cannot be trusted
MAX_RESTARTS = 3  # self-modifying-code restarts allowed before a same-address hit counts
_UC_MODES = {"real16": UC_MODE_16, "prot32": UC_MODE_32}


class _RegisterFile:
    """Batched register access through the C API (see the module docstring for why)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        count = len(self.names)
        ids = [getattr(X, f"UC_X86_REG_{n.upper()}") for n in self.names]
        self._ids = (ctypes.c_int32 * count)(*ids)
        self._values = (ctypes.c_uint64 * count)()
        base = ctypes.addressof(self._values)
        self._ptrs = (ctypes.c_void_p * count)(*(base + 8 * i for i in range(count)))
        self._count = ctypes.c_int32(count)

    def write(self, uc: Uc, regs: Mapping[str, int]) -> None:
        values = self._values
        for i, name in enumerate(self.names):
            values[i] = regs[name]
        self._check(uclib.uc_reg_write_batch(uc._uch, self._ids, self._ptrs, self._count))

    def read(self, uc: Uc) -> Dict[str, int]:
        values = self._values
        for i in range(len(self.names)):
            values[i] = 0  # narrower registers (selectors) fill only their low bytes
        self._check(uclib.uc_reg_read_batch(uc._uch, self._ids, self._ptrs, self._count))
        return {name: values[i] & 0xFFFFFFFF for i, name in enumerate(self.names)}

    @staticmethod
    def _check(status: int) -> None:
        if status:
            raise UcError(status)


class _Engine:
    """One reusable Unicorn instance for one mode, with the hooks installed up front
    (hooks added after code was translated would not apply to it: unicorn #1606)."""

    def __init__(self, mode: str, memory_hooks: bool) -> None:
        self.mode = mode
        self.uc = Uc(UC_ARCH_X86, _UC_MODES[mode])
        # A P6 (Pentium II), as the reference models, not the default Haswell: otherwise
        # C4/C5 with mod=11 decode as VEX and F3 0F BC/BD as TZCNT/LZCNT in Unicorn
        self.uc.ctl_set_cpu_model(X.UC_CPU_X86_PENTIUM2)
        self.regs = _RegisterFile(register_names(mode))
        self.mapped: set = set()  # every page mapped in the engine
        self.open: set = set()  # the pages of the current case (the others: no access)
        self.start = 0
        self.rep_string = False
        self.steps = 0
        self.restarts = 0
        self.self_modified = False
        self.code = b""
        self.branch = False
        self.foreign_debug = False
        self.last_end: Optional[int] = None
        self.prot_error = False  # the last run hit a revoked page (its TLB entry stays)
        self.initial: Mapping[str, int] = {}
        self.interrupt: Optional[int] = None
        self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        self.uc.hook_add(UC_HOOK_CODE, self._on_code)
        if memory_hooks:
            self.uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, _ignore_access)
        self.pristine = self.uc.context_save()

    def _on_interrupt(self, uc: Uc, vector: int, _data: object) -> None:
        self.interrupt = vector
        uc.emu_stop()

    def _on_code(self, uc: Uc, address: int, _size: int, _data: object) -> None:
        """Called before each instruction: let the first one run, stop before the next.
        A REP string instruction comes back to its own address once per iteration."""
        self.steps += 1
        if self.steps == 1:
            return
        if address == self.start:
            if self.code != _read_wrapping(uc, address, len(self.code)):
                # a restart, or a REP's next iteration, would run the *new* bytes: stop
                self.self_modified = True
            elif self.rep_string and self.steps < MAX_REP_ITERATIONS:
                return
            elif self.restarts < MAX_RESTARTS and self._untouched(uc):
                self.restarts += 1
                self.self_modified = True
                self.steps -= 1
                return
            elif not self.branch:
                self.self_modified = True  # restarted with part of its effects: stop
        uc.emu_stop()

    def _untouched(self, uc: Uc) -> bool:
        now = self.regs.read(uc)
        return all(now[name] == value for name, value in self.initial.items())

    def map_pages(self, memory: Mapping[int, bytes]) -> bool:
        """Make exactly the case's pages accessible. Pages of earlier cases stay mapped but
        lose all permissions (an access then fails with a *_PROT error, read as unmapped):
        toggling permissions costs far less than unmapping, which flushes translations.
        Returns True if a page lost its permissions (the TLB must then be flushed)."""
        wanted = set(memory)
        revoked = bool(self.open - wanted)
        if len(self.mapped) > MAX_MAPPED_PAGES:  # drop the pages neither case uses
            for base in self.mapped - self.open - wanted:
                self.uc.mem_unmap(base, PAGE_SIZE)
            self.mapped &= self.open | wanted
        # an access that starts in a case page and crosses into a revoked neighbour (also
        # across 4 GiB) is not refused: Unicorn checks permissions on the first page only
        # (campaign seed 11: LEAVE with EBP=0xffffffff read page 0 of an earlier case).
        # Such neighbours are unmapped, not revoked.
        neighbours = {(base + step) & 0xFFFFF000 for base in wanted
                      for step in (-PAGE_SIZE, PAGE_SIZE)} - wanted
        for base in neighbours & self.mapped:
            self.uc.mem_unmap(base, PAGE_SIZE)
            self.mapped.discard(base)
            revoked = True
        for base in self.open - wanted - neighbours:
            self.uc.mem_protect(base, PAGE_SIZE, UC_PROT_NONE)
            self.uc.ctl_remove_cache(base, base + PAGE_SIZE)
        for base in wanted - self.open:
            if base in self.mapped:
                self.uc.mem_protect(base, PAGE_SIZE, UC_PROT_ALL)
            else:
                self.uc.mem_map(base, PAGE_SIZE)
                self.mapped.add(base)
        self.open = wanted
        for base, data in memory.items():
            self.uc.mem_write(base, bytes(data))
            # writing memory does not invalidate code translated from it: a jump into a
            # page would otherwise run an earlier case's bytes
            self.uc.ctl_remove_cache(base, base + PAGE_SIZE)
        return revoked


def _read_wrapping(uc: Uc, address: int, size: int) -> bytes:
    """Bytes at a linear address, wrapping at 4 GiB as the CPU's fetch does (code may
    start at 0xFFFFFFFF); ``uc.mem_read`` would fail past the top instead."""
    first = min(size, (1 << 32) - address)
    head = bytes(uc.mem_read(address, first))
    return head + bytes(uc.mem_read(0, size - first)) if first < size else head


def _ignore_access(*_args: object) -> None:
    """A memory hook that does nothing: its presence alone changes Unicorn's code paths."""


def linear_eip(mode: str, regs: Mapping[str, int]) -> int:
    """Where CS:EIP points: ``begin`` for ``emu_start`` (CS*16+IP in real mode, EIP in
    32-bit mode where Unicorn writes ``begin`` straight into EIP)."""
    eip = regs["eip"]
    if mode == "real16":
        return ((regs["cs"] << 4) + (eip & 0xFFFF)) & 0xFFFFFFFF
    return eip


class UnicornRunner:
    """``UnicornRunner(memory_hooks=False).run(case) -> Outcome``."""

    def __init__(self, memory_hooks: bool = False) -> None:
        self.memory_hooks = memory_hooks
        self.name = "unicorn+memhooks" if memory_hooks else "unicorn"
        self._engines: Dict[str, _Engine] = {}

    def _engine(self, mode: str) -> _Engine:
        engine = self._engines.get(mode)
        if engine is None:
            engine = self._engines[mode] = _Engine(mode, self.memory_hooks)
        return engine

    def run(self, case: Case) -> Outcome:
        engine = self._engine(case.mode)
        uc = engine.uc
        uc.context_restore(engine.pristine)
        revoked = engine.map_pages(case.memory)
        begin = linear_eip(case.mode, case.regs)
        end = begin + max(len(case.code), 1)
        uc.ctl_remove_cache(begin, begin + MAX_INSTRUCTION_LENGTH)
        if engine.last_end is not None:  # a block translated there carries a stale stop
            uc.ctl_remove_cache(engine.last_end, engine.last_end + 1)
            revoked |= engine.last_end & ~(PAGE_SIZE - 1) not in engine.open
        engine.last_end = end
        if revoked or engine.prot_error:  # last: see the module docstring
            uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
        engine.regs.write(uc, case.regs)
        engine.start, engine.steps, engine.interrupt = begin, 0, None
        engine.restarts, engine.initial = 0, case.regs
        engine.self_modified, engine.code = False, case.code
        engine.branch = may_branch(case.code)
        engine.rep_string = is_rep_string(case.code)
        error: Optional[int] = None
        try:
            uc.emu_start(begin, end)
        except UcError as exc:
            error = exc.errno
        engine.prot_error = error in PROT_ERRORS
        regs = engine.regs.read(uc)
        memory = {base: bytes(uc.mem_read(base, PAGE_SIZE)) for base in case.memory}
        # Interrupt 1 is never this instruction's own, except for INT 1 and ICEBP: TF is
        # clear at the start, so no single-step trap is due. Unicorn reports it for its own
        # stops: a jump to exactly ``until`` (a stop compiled into that block), and, seen in
        # campaigns, some fetches after a far transfer (RET 66 c3 to page 0, IRET 67 cf).
        engine.foreign_debug = not raises_debug(case.code)
        exception = self._exception(engine, error, case.regs["eip"], regs["eip"])
        notes = {SELF_MODIFIED: "stored into its own bytes; Unicorn restarted it"} \
            if engine.self_modified else {}
        return Outcome(regs=regs, memory=memory, exception=exception, notes=notes)

    @staticmethod
    def _exception(engine: _Engine, error: Optional[int], eip_before: int,
                   eip_after: int) -> Optional[Exc]:
        if engine.interrupt == DEBUG_VECTOR and engine.foreign_debug:
            return None  # one of Unicorn's own stops, not a #DB of this instruction
        if engine.interrupt is not None:
            kind = "fault" if eip_after == eip_before else "trap"
            return Exc(vector=engine.interrupt, kind=kind)
        if error is None:
            return None
        if error == UC_ERR_INSN_INVALID:
            return Exc(vector=UD_VECTOR, kind="fault")
        if error in FETCH_ERRORS and engine.steps >= 1:
            return None  # the instruction retired; fetching the next one is not part of it
        if error in UNMAPPED_ERRORS:
            return Exc(vector=-1, kind="unmapped")
        raise UcError(error)
