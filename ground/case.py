"""The runner interface: a ``Case`` goes in, an ``Outcome`` comes out.

Every runner (Unicorn, the reference, later a native i386 process or another emulator)
implements ``Runner.run(case) -> Outcome``. The vector files (``vectors/FORMAT.md``) are a
serialisation of exactly these two records, so anything that can run a case can replay a
vector and vice versa.

Conventions (the single place they are written down):
- ``mode`` is ``"real16"`` (real-address mode, 16-bit defaults; segment registers hold
  paragraph selectors, base = selector * 16) or ``"prot32"`` (32-bit protected mode with
  flat 4 GiB segments of base 0; selectors are not part of the state).
- ``regs`` holds ``eax ecx edx ebx esp ebp esi edi eip eflags`` and, in ``real16``,
  ``cs ds es fs gs ss``. Values are unsigned 32-bit (16-bit for selectors).
- ``memory`` maps the linear base of each 4 KiB page to its 4096 bytes; the instruction
  bytes already sit in one of them at linear ``cs_base + eip``. Only these pages exist: an
  access anywhere else ends the case with ``Exc(kind="unmapped")``.
- An exception is reported, not delivered: for a fault the final state is the initial
  state (EIP at the faulting instruction), except what the host CPU keeps: a REP string
  instruction faulting part-way keeps its completed iterations (ECX/ESI/EDI, memory; SDM REP),
  ENTER faulting in its frame-pointer copies keeps the EBP it pushed (memory only); for a trap
  (INT n, INT3, INTO) the final state is after the instruction, with EIP at the next one,
  as the SDM's saved return address says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Protocol

PAGE_SIZE = 4096
GPRS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss")
MODES = ("real16", "prot32")


def register_names(mode: str) -> List[str]:
    """The registers a case of ``mode`` holds (the conventions above)."""
    names = [*GPRS, "eip", "eflags"]
    return names + list(SEGMENTS) if mode == "real16" else names


@dataclass(frozen=True)
class Exc:
    """An exception raised by the one instruction. ``kind`` is ``fault``, ``trap`` or
    ``unmapped`` (an access outside the case's pages; ``vector`` is then -1)."""

    vector: int
    kind: str = "fault"
    error_code: Optional[int] = None

    def label(self) -> str:
        names = {0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM",
                 8: "#DF", 10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF",
                 17: "#AC"}
        if self.kind == "unmapped":
            return "unmapped-access"
        base = names.get(self.vector, f"INT {self.vector:#x}")
        return base if self.error_code is None else f"{base}({self.error_code:#x})"


@dataclass(frozen=True)
class Case:
    """One instruction and the machine state it starts from."""

    name: str
    mode: str
    code: bytes
    regs: Mapping[str, int]
    memory: Mapping[int, bytes]
    form: str = ""
    undefined_flags: int = 0  # EFLAGS bits the SDM leaves undefined for this form
    # The destination the SDM leaves undefined for this execution (BSF/BSR with a zero
    # source, SHLD/SHRD with a count above the size): "" for none, "reg:NAME:BITMASK"
    # (e.g. "reg:eax:0xffff") or "mem:LINEAR:SIZE" (e.g. "mem:0x2ffe:4").
    undefined_dest: str = ""

    def __init__(self, name: str, mode: str, code: bytes, regs: Mapping[str, int],
                 memory: Mapping[int, bytes], form: str = "", undefined_flags: int = 0,
                 undefined_dest: str = "") -> None:
        """The dataclass's own ``__init__`` (kept out by this one) sets a frozen
        instance's fields one ``object.__setattr__`` call each: ~7k of a campaign case's
        ~250k machine instructions (issue 18). One update of the instance's dict sets the
        same attributes; ``tests`` check the parameters against the fields."""
        self.__dict__.update(name=name, mode=mode, code=code, regs=regs, memory=memory,
                             form=form, undefined_flags=undefined_flags,
                             undefined_dest=undefined_dest)
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        for base, data in memory.items():
            if base % PAGE_SIZE or len(data) != PAGE_SIZE:
                raise ValueError(f"page {base:#x} is not a 4 KiB-aligned 4096-byte page")


@dataclass(frozen=True, init=False)
class Outcome:
    """The state after the instruction (or at the exception), as a runner saw it."""

    regs: Mapping[str, int]
    memory: Mapping[int, bytes]
    exception: Optional[Exc] = None
    notes: Dict[str, str] = field(default_factory=dict)

    def __init__(self, regs: Mapping[str, int], memory: Mapping[int, bytes],
                 exception: Optional[Exc] = None, notes: Optional[Dict[str, str]] = None
                 ) -> None:
        """The dataclass's own ``__init__`` for a frozen class sets each field through
        ``object.__setattr__``; storing into the instance dict does the same: 10.5k -> 6.3k
        instructions an Outcome (callgrind), of which a differential case builds two
        (issue 18). Reading ``__dict__`` makes it a real dict, so reading a field costs a
        little more (the judging of a case ~+0.6k); ``object.__setattr__`` called
        directly (9.4k) kept that, but a whole judged case came out 3.3k dearer.
        ``notes`` left out is a new empty dict, as with ``default_factory``."""
        state = self.__dict__
        state["regs"], state["memory"], state["exception"] = regs, memory, exception
        state["notes"] = {} if notes is None else notes


class Runner(Protocol):
    """Anything that executes one case: Unicorn, the reference, a native process... A
    runner whose engine lives in another process raises ``EngineCrashed`` when it dies."""

    name: str

    def run(self, case: Case) -> Outcome: ...


@dataclass
class Death:
    """How a child ended: ``signal`` name (e.g. ``SIGABRT``) or exit status, and the last
    line it wrote on stderr."""

    signal: str
    detail: str = ""


class EngineCrashed(Exception):
    """The engine died (or hung) on ``case``: a finding of its own kind, never a pass.
    ``alone`` says whether the case crashed again by itself in a fresh engine."""

    def __init__(self, engine: str, case: Case, death: Death, alone: bool) -> None:
        self.engine, self.case, self.death, self.alone = engine, case, death, alone
        where = "also alone in a fresh engine" if alone else \
            "only after the earlier cases of its batch (alone it ran)"
        detail = f"; stderr: {death.detail}" if death.detail else ""
        super().__init__(f"{engine} crashed ({death.signal}) on {case.code.hex(' ')} in "
                         f"{case.mode} [{case.name}], {where}{detail}")

    @property
    def signal(self) -> str:
        return self.death.signal
