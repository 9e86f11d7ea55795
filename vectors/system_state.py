"""Version 2 of the vector format: the system state a vector may state (``FORMAT.md``).

A version-1 vector runs in a fixed machine (flat CPL-0 protected mode or real mode, no
tables, no paging, exceptions reported). Version 2 adds an optional ``system`` object to
``initial`` and ``final`` and an optional ``delivery`` field, so a vector can start at
CPL 3, with descriptor tables and page tables in ``ram``, with segment caches that do not
match their selectors, with an x87 stack, with MSRs and debug registers, and can say that
an exception is delivered through the IDT. Every key of ``system`` is optional: what a
vector leaves out keeps the version-1 machine's value, and only the keys
``initial.system`` names are compared in ``final.system`` (which must name the same
keys).

This module parses, writes and compares that object; running it is ``vectors.system_run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ground.compare import Difference

SEGMENT_NAMES = ("es", "cs", "ss", "ds", "fs", "gs")  # the SDM's Sreg encoding order
CONTROL = ("cr0", "cr2", "cr3", "cr4")
TABLES = ("gdtr", "idtr")
SYSTEM_SEGMENTS = ("ldtr", "tr")
DEBUG = ("dr0", "dr1", "dr2", "dr3", "dr6", "dr7")  # DR4/DR5 alias DR6/DR7 (CR4.DE clear)
KEYS = ("cpl", *CONTROL, *TABLES, *SYSTEM_SEGMENTS, "segments", "x87", "msrs", "dr")
DELIVERIES = ("report", "idt")
# The version-1 machine, written as version-2 state (``FORMAT.md``, Machine conventions).
FLAT_CODE, FLAT_DATA = 0xC09B00, 0xC09300  # 32-bit, G, present, DPL 0, accessed
PROT32_CR0 = 0x00000033   # PE MP ET NE: what Linux gives user code, and the native oracle
ATTRIBUTE_BITS = 0x00F0FF00   # a descriptor's high dword without base and limit bits
X87_EMPTY = 3


class SystemStateError(ValueError):
    """A ``system`` object that does not follow the format; the message names the field."""


@dataclass(frozen=True)
class Segment:
    """A segment register with its hidden part (SDM Vol. 3A, 3.4.3): ``limit`` is the
    byte-granular limit (the descriptor's limit scaled by G), ``attributes`` the
    descriptor's high dword without its base and limit bits (LAR's layout: type, S, DPL,
    P at bits 8-15, AVL, L, D/B, G at bits 20-23; bits 16-19 zero, the limit is
    ``limit``); 0 for a null selector loaded into a data segment register."""

    selector: int
    base: int
    limit: int
    attributes: int

    def to_json(self) -> Dict[str, int]:
        return {"selector": self.selector, "base": self.base, "limit": self.limit,
                "attributes": self.attributes}


@dataclass(frozen=True)
class X87:
    """The x87 state a vector states (SDM Vol. 1, 8.1): ``st`` is ST(0)..ST(7) in stack
    order as 80-bit integers (sign, 15-bit exponent, 64-bit significand with the J bit);
    ``ftw`` the full tag word (2 bits per physical register R0..R7, as FSTENV stores it;
    only "empty or not" is read from an initial state). The instruction and data
    pointers (FIP, FDP, FOP) are not part of it: vendors fill them differently."""

    fcw: int
    fsw: int
    ftw: int
    st: Tuple[int, ...]

    @property
    def top(self) -> int:
        return self.fsw >> 11 & 7

    def empty(self, i: int) -> bool:
        """Whether ST(i) is empty, read from the tag of its physical register."""
        return (self.ftw >> (2 * ((self.top + i) & 7)) & 3) == X87_EMPTY

    def to_json(self) -> Dict[str, Any]:
        return {"fcw": self.fcw, "fsw": self.fsw, "ftw": self.ftw, "st": list(self.st)}


@dataclass(frozen=True)
class SystemState:
    """The keys of one ``system`` object (None: not stated, the version-1 value holds)."""

    cpl: Optional[int] = None
    cr0: Optional[int] = None
    cr2: Optional[int] = None
    cr3: Optional[int] = None
    cr4: Optional[int] = None
    gdtr: Optional[Tuple[int, int]] = None     # (base, limit)
    idtr: Optional[Tuple[int, int]] = None
    ldtr: Optional[Segment] = None
    tr: Optional[Segment] = None
    segments: Optional[Dict[str, Segment]] = None
    x87: Optional[X87] = None
    msrs: Optional[Dict[int, int]] = None
    dr: Optional[Dict[str, int]] = None       # debug registers, by DEBUG name

    def stated(self) -> Tuple[str, ...]:
        return tuple(key for key in KEYS if getattr(self, key) is not None)

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for key in self.stated():
            value = getattr(self, key)
            if key in TABLES:
                out[key] = {"base": value[0], "limit": value[1]}
            elif key in SYSTEM_SEGMENTS or key == "x87":
                out[key] = value.to_json()
            elif key == "segments":
                out[key] = {name: value[name].to_json() for name in SEGMENT_NAMES
                            if name in value}
            elif key == "msrs":
                out[key] = {f"{index:#x}": value[index] for index in sorted(value)}
            elif key == "dr":
                out[key] = {name: value[name] for name in DEBUG if name in value}
            else:
                out[key] = value
        return out


@dataclass(frozen=True)
class SystemVector:
    """What version 2 adds to one vector: the two states and how exceptions end."""

    initial: SystemState
    final: SystemState
    delivery: str = "report"
    notes: Dict[str, str] = field(default_factory=dict)
    undefined_fsw: int = 0  # x87 status-word bits the SDM leaves undefined here


# --- reading -----------------------------------------------------------------------------

def _uint(value: Any, bits: int, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise SystemStateError(f"field {where} should be a u{bits}, got {value!r:.40}")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise SystemStateError(f"field {where} should be an object, got {value!r:.40}")
    return value


def _field(obj: Mapping[str, Any], key: str, bits: int, where: str) -> int:
    if key not in obj:
        raise SystemStateError(f"missing field {where}.{key}")
    return _uint(obj[key], bits, f"{where}.{key}")


def _segment(value: Any, where: str) -> Segment:
    obj = _object(value, where)
    unknown = set(obj) - {"selector", "base", "limit", "attributes"}
    if unknown:
        raise SystemStateError(f"{where} has unknown keys {', '.join(sorted(unknown))}")
    attributes = _field(obj, "attributes", 32, where)
    if attributes & ~ATTRIBUTE_BITS:
        raise SystemStateError(f"{where}.attributes {attributes:#x} has bits outside "
                               f"{ATTRIBUTE_BITS:#x} (base and limit bits belong in base "
                               "and limit)")
    return Segment(_field(obj, "selector", 16, where), _field(obj, "base", 32, where),
                   _field(obj, "limit", 32, where), attributes)


def _x87(value: Any, where: str) -> X87:
    obj = _object(value, where)
    st = obj.get("st")
    if not isinstance(st, list) or len(st) != 8:
        raise SystemStateError(f"field {where}.st should list ST(0)..ST(7), 8 integers")
    values = tuple(_uint(v, 80, f"{where}.st[{i}]") for i, v in enumerate(st))
    return X87(_field(obj, "fcw", 16, where), _field(obj, "fsw", 16, where),
               _field(obj, "ftw", 16, where), values)


def _msrs(value: Any, where: str) -> Dict[int, int]:
    out = {}
    for key, number in _object(value, where).items():
        try:
            index = int(key, 16)
        except (TypeError, ValueError):
            raise SystemStateError(f"{where} key {key!r:.20} should be a hex MSR index "
                                   "(\"0x174\")") from None
        out[_uint(index, 32, f"{where} index")] = _uint(number, 64, f"{where}.{key}")
    return out


def _debug(value: Any, where: str) -> Dict[str, int]:
    obj = _object(value, where)
    unknown = set(obj) - set(DEBUG)
    if unknown:
        raise SystemStateError(f"{where} has unknown registers {', '.join(sorted(unknown))} "
                               f"(known: {', '.join(DEBUG)})")
    return {name: _uint(obj[name], 32, f"{where}.{name}") for name in DEBUG if name in obj}


def parse_state(value: Any, where: str) -> SystemState:
    """One ``system`` object; every key is checked and named in the error."""
    obj = _object(value, where)
    unknown = set(obj) - set(KEYS)
    if unknown:
        raise SystemStateError(f"{where} has unknown keys {', '.join(sorted(unknown))} "
                               f"(known: {', '.join(KEYS)})")
    parsed: Dict[str, Any] = {}
    if "cpl" in obj:
        parsed["cpl"] = _uint(obj["cpl"], 2, f"{where}.cpl")
    for key in CONTROL:
        if key in obj:
            parsed[key] = _uint(obj[key], 32, f"{where}.{key}")
    for key in TABLES:
        if key in obj:
            table = _object(obj[key], f"{where}.{key}")
            parsed[key] = (_field(table, "base", 32, f"{where}.{key}"),
                           _field(table, "limit", 16, f"{where}.{key}"))
    for key in SYSTEM_SEGMENTS:
        if key in obj:
            parsed[key] = _segment(obj[key], f"{where}.{key}")
    if "segments" in obj:
        segments = _object(obj["segments"], f"{where}.segments")
        bad = set(segments) - set(SEGMENT_NAMES)
        if bad:
            raise SystemStateError(f"{where}.segments has unknown registers "
                                   f"{', '.join(sorted(bad))}")
        parsed["segments"] = {name: _segment(segments[name], f"{where}.segments.{name}")
                              for name in SEGMENT_NAMES if name in segments}
    if "x87" in obj:
        parsed["x87"] = _x87(obj["x87"], f"{where}.x87")
    if "msrs" in obj:
        parsed["msrs"] = _msrs(obj["msrs"], f"{where}.msrs")
    if "dr" in obj:
        parsed["dr"] = _debug(obj["dr"], f"{where}.dr")
    return SystemState(**parsed)


def parse_system(record: Mapping[str, Any], initial: Mapping[str, Any],
                 final: Mapping[str, Any], mode: str) -> Optional[SystemVector]:
    """The version-2 part of a vector, or None for a vector without one (version 1)."""
    delivery = record.get("delivery", "report")
    if delivery not in DELIVERIES:
        raise SystemStateError(f"field delivery {delivery!r:.20} is not one of {DELIVERIES}")
    if "system" not in initial and "system" not in final:
        if delivery != "report":
            raise SystemStateError("delivery 'idt' needs initial.system (an IDTR at least)")
        return None
    if "system" not in initial or "system" not in final:
        raise SystemStateError("initial.system and final.system come together")
    start = parse_state(initial["system"], "initial.system")
    end = parse_state(final["system"], "final.system")
    if set(start.stated()) != set(end.stated()):
        raise SystemStateError(f"final.system states {sorted(end.stated())}, "
                               f"initial.system {sorted(start.stated())}: the same keys")
    if start.segments is not None and end.segments is not None \
            and set(start.segments) != set(end.segments):
        raise SystemStateError("final.system.segments should name the registers that "
                               "initial.system.segments names")
    if start.msrs is not None and end.msrs is not None and set(start.msrs) != set(end.msrs):
        raise SystemStateError("final.system.msrs should name the MSRs that "
                               "initial.system.msrs names")
    if start.dr is not None and end.dr is not None and set(start.dr) != set(end.dr):
        raise SystemStateError("final.system.dr should name the debug registers that "
                               "initial.system.dr names")
    pe = effective_cr0(start, mode) & 1
    if pe != (mode != "real16"):
        raise SystemStateError(f"initial.system.cr0 PE={pe} contradicts mode {mode!r}")
    if delivery == "idt" and start.idtr is None:
        raise SystemStateError("delivery 'idt' needs initial.system.idtr")
    open_fsw = record.get("undefined_fsw", 0)
    if not isinstance(open_fsw, int) or isinstance(open_fsw, bool) \
            or not 0 <= open_fsw <= 0xFFFF:
        raise SystemStateError(f"field undefined_fsw should be a u16, got {open_fsw!r:.40}")
    if open_fsw and start.x87 is None:
        raise SystemStateError("undefined_fsw needs initial.system.x87")
    return SystemVector(start, end, delivery, undefined_fsw=open_fsw)


def effective_cr0(state: SystemState, mode: str) -> int:
    """CR0 as the vector starts: stated, or the version-1 machine's."""
    if state.cr0 is not None:
        return state.cr0
    return 0x60000010 if mode == "real16" else PROT32_CR0


# --- translating (the well-formedness check reads the instruction through the tables) --

def linear_to_physical(state: SystemState, mode: str, linear: int,
                       memory: Mapping[int, bytes]) -> Optional[int]:
    """Where the CPU fetches ``linear`` under the vector's 32-bit paging (4 KiB and, with
    CR4.PSE, 4 MiB pages; SDM Vol. 3A, 4.3), or None when a present bit is clear or a
    table lies outside the mapped pages. Without paging, the address itself."""
    cr0 = effective_cr0(state, mode)
    if not cr0 & 0x80000000:
        return linear
    cr3, cr4 = state.cr3 or 0, state.cr4 or 0

    def entry(address: int) -> Optional[int]:
        page = memory.get(address & ~0xFFF)
        if page is None:
            return None
        return int.from_bytes(page[address & 0xFFF:(address & 0xFFF) + 4], "little")

    pde = entry((cr3 & 0xFFFFF000) | (linear >> 22) << 2)
    if pde is None or not pde & 1:
        return None
    if pde & 0x80 and cr4 & 0x10:
        return (pde & 0xFFC00000) | (linear & 0x3FFFFF)
    pte = entry((pde & 0xFFFFF000) | (linear >> 12 & 0x3FF) << 2)
    if pte is None or not pte & 1:
        return None
    return (pte & 0xFFFFF000) | (linear & 0xFFF)


def code_base(state: SystemState, mode: str, regs: Mapping[str, int]) -> int:
    """CS's base: the stated hidden part, else the version-1 rule."""
    if state.segments is not None and "cs" in state.segments:
        return state.segments["cs"].base
    return (regs.get("cs", 0) << 4) if mode == "real16" else 0


# --- comparing -----------------------------------------------------------------------------

def _segment_differences(name: str, a: Segment, b: Segment,
                         hidden: bool) -> List[Difference]:
    fields = ("selector", "base", "limit", "attributes") if hidden else ("selector",)
    return [Difference(f"{name}.{key}", getattr(a, key), getattr(b, key))
            for key in fields if getattr(a, key) != getattr(b, key)]


def compare_states(expected: SystemState, actual: SystemState,
                   unobserved: Tuple[str, ...] = (), open_fsw: int = 0) -> List[Difference]:
    """Every stated key of ``expected`` that ``actual`` does not hold, named like
    ``cr2``, ``gdtr.base``, ``ss.attributes``, ``x87.st3``, ``x87.fsw.C1``, ``msr.0x174``,
    ``dr6``.
    ``unobserved`` names what the engine cannot read back (``segments.hidden``: the
    hidden parts of the segment registers, of which Unicorn shows only selectors);
    ``open_fsw`` the x87 status-word bits the SDM leaves undefined (not compared)."""
    out: List[Difference] = []
    for key in expected.stated():
        want, got = getattr(expected, key), getattr(actual, key)
        if got is None:
            out.append(Difference(key, "stated", "not reported"))
        elif key in TABLES:
            out += [Difference(f"{key}.{part}", w, g)
                    for part, w, g in zip(("base", "limit"), want, got) if w != g]
        elif key in SYSTEM_SEGMENTS:
            out += _segment_differences(key, want, got, True)
        elif key == "segments":
            hidden = "segments.hidden" not in unobserved
            for name in want:
                if name not in got:
                    out.append(Difference(name, "stated", "not reported"))
                else:
                    out += _segment_differences(name, want[name], got[name], hidden)
        elif key == "x87":
            out += _x87_differences(want, got, open_fsw)
        elif key == "msrs":
            out += [Difference(f"msr.{index:#x}", want[index], got.get(index))
                    for index in sorted(want) if got.get(index) != want[index]]
        elif key == "dr":
            out += [Difference(name, want[name], got.get(name))
                    for name in DEBUG if name in want and got.get(name) != want[name]]
        elif want != got:
            out.append(Difference(key, want, got))
    return out


# The status and control words compared field by field (SDM Vol. 1, Figures 8-5 and
# 8-6), so a difference names the flag (``x87.fsw.C1``, ``x87.fcw.reserved``) and a
# known-differences entry can cover one flag without excusing the others.
FSW_FIELDS = (("IE", 0x1), ("DE", 0x2), ("ZE", 0x4), ("OE", 0x8), ("UE", 0x10),
              ("PE", 0x20), ("SF", 0x40), ("ES", 0x80), ("C0", 0x100), ("C1", 0x200),
              ("C2", 0x400), ("TOP", 0x3800), ("C3", 0x4000), ("B", 0x8000))
FCW_FIELDS = (("IM", 0x1), ("DM", 0x2), ("ZM", 0x4), ("OM", 0x8), ("UM", 0x10),
              ("PM", 0x20), ("PC", 0x300), ("RC", 0xC00), ("X", 0x1000),
              ("reserved", 0xE0C0))


def _word_differences(name: str, fields: Tuple[Tuple[str, int], ...], want: int,
                      got: int) -> List[Difference]:
    out = []
    for label, mask in fields:
        if (want ^ got) & mask:
            low = mask & -mask
            contiguous = (mask + low) & mask == 0
            shift = low.bit_length() - 1 if contiguous else 0  # reserved: the bits in place
            out.append(Difference(f"x87.{name}.{label}", (want & mask) >> shift,
                                  (got & mask) >> shift))
    return out


def _x87_differences(want: X87, got: X87, open_fsw: int = 0) -> List[Difference]:
    out = _word_differences("fcw", FCW_FIELDS, want.fcw, got.fcw)
    out += _word_differences("fsw", FSW_FIELDS, want.fsw & ~open_fsw, got.fsw & ~open_fsw)
    if want.ftw != got.ftw:
        out.append(Difference("x87.ftw", want.ftw, got.ftw))
    for i in range(8):  # an empty register's contents are not architectural
        if not want.empty(i) and want.st[i] != got.st[i]:
            out.append(Difference(f"x87.st{i}", want.st[i], got.st[i]))
    return out
