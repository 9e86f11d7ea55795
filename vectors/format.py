"""One vector <-> one (Case, Outcome) pair, exactly (``vectors/FORMAT.md`` is the prose).

A vector is a JSON object. Memory is sparse so files stay small: ``initial.pages`` names
the mapped 4 KiB pages, every byte of them holds ``initial.fill`` except the ``[addr, byte]``
pairs in ``initial.ram``; ``final.ram`` lists only the bytes that differ from the initial
memory. Registers are listed whole on both sides, so a consumer compares what it reads.
Version 2 adds the system state (``vectors/system_state.py``): a vector with
``initial.system`` parses to a ``SystemVector`` beside its Case and Outcome.
This module knows nothing about files or runners (``vectors/files.py``, ``vectors/replay.py``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ground.case import GPRS, MODES, PAGE_SIZE, SEGMENTS, Case, Exc, Outcome
from vectors.system_state import (
    SystemStateError,
    SystemVector,
    code_base,
    linear_to_physical,
    parse_system,
)

FORMAT_NAME = "x86lab-vectors"
FORMAT_VERSION = 2  # the newest version this reader reads; version 1 files stay valid
SYSTEM_VERSION = 2  # the version that brought ``system`` and ``delivery``
EXC_KINDS = ("fault", "trap", "unmapped")
DELIVERED_KINDS = ("fault", "trap", "shutdown")  # final.exception under delivery "idt"


class VectorError(ValueError):
    """A vector (or a file's header) that does not follow the format; says what and where."""


def _fill_byte(memory: Mapping[int, bytes]) -> int:
    """The most common byte over all pages: listing the others keeps ``ram`` shortest."""
    counts: Counter = Counter()
    for data in memory.values():
        counts.update(data)
    return counts.most_common(1)[0][0] if counts else 0


def _ram_pairs(memory: Mapping[int, bytes], fill: int) -> List[List[int]]:
    return [[base + i, byte] for base in sorted(memory) for i, byte in enumerate(memory[base])
            if byte != fill]


def _changed_pairs(before: Mapping[int, bytes], after: Mapping[int, bytes]) -> List[List[int]]:
    pairs = []
    for base in sorted(after):
        if base not in before:
            raise VectorError(f"outcome has page {base:#x} that the case does not map")
        old, new = before[base], after[base]
        if old != new:
            pairs.extend([base + i, b] for i, (a, b) in enumerate(zip(old, new)) if a != b)
    return pairs


def exc_to_json(exc: Optional[Exc]) -> Optional[Dict[str, Any]]:
    if exc is None:
        return None
    return {"vector": exc.vector, "kind": exc.kind, "error_code": exc.error_code}


def to_record(case: Case, outcome: Outcome,
              system: Optional[SystemVector] = None) -> Dict[str, Any]:
    """Serialise a case and the outcome its oracle gave into one vector object (with the
    version-2 system part when ``system`` is given)."""
    fill = _fill_byte(case.memory)
    record: Dict[str, Any] = {
        "name": case.name,
        "form": case.form,
        "mode": case.mode,
        "bytes": list(case.code),
        "undefined_flags": case.undefined_flags,
        "initial": {
            "regs": dict(case.regs),
            "pages": sorted(case.memory),
            "fill": fill,
            "ram": _ram_pairs(case.memory, fill),
        },
        "final": {
            "regs": dict(outcome.regs),
            "ram": _changed_pairs(case.memory, outcome.memory),
            "exception": exc_to_json(outcome.exception),
        },
    }
    undefined_dest = getattr(case, "undefined_dest", "")
    if undefined_dest:
        record["undefined_dest"] = undefined_dest
    if outcome.notes:
        record["final"]["notes"] = dict(outcome.notes)
    if system is not None:
        record["initial"]["system"] = system.initial.to_json()
        record["final"]["system"] = system.final.to_json()
        if system.delivery != "report":
            record["delivery"] = system.delivery
        if system.undefined_fsw:
            record["undefined_fsw"] = system.undefined_fsw
    return record


# --- reading: every check names the field, so a bad file is fixed from the message alone ---

def _get(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise VectorError(f"missing field {where}{key}")
    value = obj[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise VectorError(f"field {where}{key} should be {kind.__name__}, got {value!r:.40}")
    return value


def required_registers(mode: str) -> Tuple[str, ...]:
    """The registers both ``initial.regs`` and ``final.regs`` must list in ``mode``."""
    return GPRS + ("eip", "eflags") + (SEGMENTS if mode == "real16" else ())


def _regs(obj: Mapping[str, Any], where: str, mode: str) -> Dict[str, int]:
    regs = _get(obj, "regs", dict, where)
    for name in required_registers(mode):
        if name not in regs:
            raise VectorError(f"missing register {where}regs.{name}")
    for name, value in regs.items():
        bits = 16 if name in SEGMENTS else 32
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
            raise VectorError(f"register {where}regs.{name} should be a u{bits}, "
                              f"got {value!r:.40}")
    return dict(regs)


def code_address(mode: str, regs: Mapping[str, int]) -> int:
    """The linear address of the instruction: ``cs_base + eip`` (CS * 16 + IP in real16)."""
    if mode == "real16":
        return ((regs["cs"] << 4) + (regs["eip"] & 0xFFFF)) & 0xFFFFFFFF
    return regs["eip"]


def _check_code_in_memory(case: Case, system: Optional[SystemVector] = None) -> None:
    """``bytes`` must be what the CPU fetches at ``cs_base + eip``: a vector whose two copies
    of the instruction differ would test one thing on one engine and another elsewhere.
    The bytes are read up to the first unmapped page (a vector may cut an instruction there:
    its fetch then ends in ``unmapped``), and the first byte must be mapped. A version-2
    vector's CS base is its stated hidden part, and with paging the bytes are read through
    its page tables (a byte whose page is not present ends the check, as unmapped does)."""
    start = code_address(case.mode, case.regs)
    if system is not None:
        start = (code_base(system.initial, case.mode, case.regs) + case.regs["eip"]) \
            & 0xFFFFFFFF
    fetched = bytearray()
    for offset in range(len(case.code)):
        addr = (start + offset) & 0xFFFFFFFF
        if system is not None:
            physical = linear_to_physical(system.initial, case.mode, addr, case.memory)
            if physical is None:
                break
            addr = physical
        page = case.memory.get(addr - addr % PAGE_SIZE)
        if page is None:
            break
        fetched.append(page[addr % PAGE_SIZE])
    if not fetched:
        raise VectorError(f"cs_base + eip ({start:#x}) lies outside initial.pages")
    if bytes(fetched) != case.code[:len(fetched)]:
        raise VectorError(f"bytes [{case.code.hex(' ')}] differ from the memory at cs_base + "
                          f"eip ({start:#x}): [{bytes(fetched).hex(' ')}]")


def _apply_pairs(pages: Dict[int, bytearray], pairs: Any, where: str) -> None:
    if not isinstance(pairs, list):
        raise VectorError(f"field {where}ram should be a list of [address, byte] pairs")
    for pair in pairs:
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
            raise VectorError(f"{where}ram entry {pair!r:.40} is not an [address, byte] pair")
        addr, byte = pair
        page = pages.get(addr - addr % PAGE_SIZE)
        if page is None:
            raise VectorError(f"{where}ram address {addr:#x} lies outside initial.pages")
        if not 0 <= byte <= 0xFF:
            raise VectorError(f"{where}ram byte {byte!r} at {addr:#x} is not 0..255")
        page[addr % PAGE_SIZE] = byte


def _check_undefined_dest(spec: Any) -> None:
    """``reg:NAME:HEXMASK`` or ``mem:HEXADDR:SIZE`` (SIZE 1..4096), or several of them
    separated by commas, as the comparator reads it."""
    if isinstance(spec, str) and "," in spec:
        for item in spec.split(","):
            _check_undefined_dest(item)
        return
    parts = spec.split(":") if isinstance(spec, str) else []
    try:
        if len(parts) == 3 and parts[0] == "reg" and parts[1]:
            int(parts[2], 16)
            return
        if len(parts) == 3 and parts[0] == "mem" and 0 < int(parts[2]) <= PAGE_SIZE:
            int(parts[1], 16)
            return
    except ValueError:
        pass
    raise VectorError(f"field undefined_dest {spec!r:.40} should look like 'reg:eax:0xffff' "
                      "or 'mem:0x2ffe:4'")


def _exc(value: Any, kinds: Tuple[str, ...] = EXC_KINDS) -> Optional[Exc]:
    if value is None:
        return None
    vector = _get(value, "vector", int, "final.exception.")
    kind = _get(value, "kind", str, "final.exception.")
    if kind not in kinds:
        raise VectorError(f"final.exception.kind {kind!r} is not one of {kinds}")
    code = value.get("error_code")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        raise VectorError(f"final.exception.error_code should be an int or null, got {code!r}")
    return Exc(vector=vector, kind=kind, error_code=code)


def from_record(record: Any) -> Tuple[Case, Outcome]:
    """Parse one vector object back into the exact Case and expected Outcome (a version-2
    vector's system part is checked and dropped: ``from_record_v2`` keeps it)."""
    case, outcome, _ = from_record_v2(record)
    return case, outcome


def from_record_v2(record: Any) -> Tuple[Case, Outcome, Optional[SystemVector]]:
    """Parse one vector object: the Case, the expected Outcome and, for a vector that
    states system state (version 2), its ``SystemVector`` (None otherwise)."""
    if not isinstance(record, dict):
        raise VectorError(f"a vector should be a JSON object, got {type(record).__name__}")
    name = _get(record, "name", str, "")
    mode = _get(record, "mode", str, "")
    if mode not in MODES:
        raise VectorError(f"mode {mode!r} is not one of {MODES}")
    code = _get(record, "bytes", list, "")
    if not code or not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 0xFF
                           for b in code):
        raise VectorError("field bytes should list one or more integers 0..255")
    initial = _get(record, "initial", dict, "")
    final = _get(record, "final", dict, "")
    fill = initial.get("fill", 0)
    if not isinstance(fill, int) or not 0 <= fill <= 0xFF:
        raise VectorError(f"field initial.fill should be a byte, got {fill!r:.40}")
    pages: Dict[int, bytearray] = {}
    for base in _get(initial, "pages", list, "initial."):
        if not isinstance(base, int) or base % PAGE_SIZE or not 0 <= base < 1 << 32:
            raise VectorError(f"initial.pages entry {base!r:.40} is not a 4 KiB-aligned address")
        pages[base] = bytearray([fill]) * PAGE_SIZE
    _apply_pairs(pages, initial.get("ram", []), "initial.")
    before = {base: bytes(data) for base, data in pages.items()}
    _apply_pairs(pages, final.get("ram", []), "final.")
    after = {base: bytes(data) for base, data in pages.items()}
    undefined = record.get("undefined_flags", 0)
    if not isinstance(undefined, int) or isinstance(undefined, bool):
        raise VectorError(f"field undefined_flags should be an int, got {undefined!r:.40}")
    extra = {}
    undefined_dest = record.get("undefined_dest", "")
    if undefined_dest:
        _check_undefined_dest(undefined_dest)
        extra["undefined_dest"] = undefined_dest
    case = Case(name=name, mode=mode, code=bytes(code), regs=_regs(initial, "initial.", mode),
                memory=before, form=record.get("form", "") or "", undefined_flags=undefined,
                **extra)
    try:
        system = parse_system(record, initial, final, mode)
    except SystemStateError as exc:
        raise VectorError(str(exc)) from None
    _check_code_in_memory(case, system)
    notes = final.get("notes") or {}
    if not isinstance(notes, dict):
        raise VectorError(f"field final.notes should be an object, got {notes!r:.40}")
    kinds = DELIVERED_KINDS if system is not None and system.delivery == "idt" else EXC_KINDS
    outcome = Outcome(regs=_regs(final, "final.", mode), memory=after,
                      exception=_exc(final.get("exception"), kinds), notes=dict(notes))
    return case, outcome, system


def make_header(version: int = 1, **meta: Any) -> Dict[str, Any]:
    """The first line of a file: format and version, then whatever describes its making.
    Files of version-1 vectors keep saying version 1, so older readers still take them;
    a file holding any vector with a system part says ``SYSTEM_VERSION``."""
    return {"format": FORMAT_NAME, "version": version, **meta}


def is_header(obj: Any) -> bool:
    return isinstance(obj, dict) and "format" in obj and "initial" not in obj


def check_header(obj: Mapping[str, Any]) -> None:
    """A header this reader understands: our format, and a version from 1 to ours."""
    if obj.get("format") != FORMAT_NAME:
        raise VectorError(f"header format is {obj.get('format')!r}, expected {FORMAT_NAME!r}")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise VectorError(f"header version {version!r:.40} should be an integer "
                          f"(this reader's is {FORMAT_VERSION})")
    if version < 1:
        raise VectorError(f"header version {version!r} is below 1 (versions start at 1)")
    if version > FORMAT_VERSION:
        raise VectorError(f"header version {version!r} is newer than this reader "
                          f"({FORMAT_VERSION}); update x86lab")
