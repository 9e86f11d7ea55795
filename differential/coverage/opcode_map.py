"""The one- and two-byte opcode maps as 16x16 grids of cells, each with a coverage status.

A cell gathers every form of ``FORMS`` whose opcode lands on it (``+r`` forms cover eight
cells); group opcodes (80-83, C0/C1, D0-D3, F6/F7, FE/FF, 0F BA, 0F C7...) also carry one
row per ModRM reg value. Status, strongest first: divergent, tested, implemented,
not implemented, not in the ISA; prefixes and escapes are marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Set, Tuple

from differential.coverage.isa import ESCAPES, GROUP_DIGITS, PREFIXES, Opcode, digit_in_isa, in_isa

DIVERGENT, TESTED, IMPLEMENTED = "divergent", "tested", "implemented"
MISSING, NOT_ISA, PREFIX, ESCAPE = "not implemented", "not in ISA", "prefix", "escape"
STATUSES = (DIVERGENT, TESTED, IMPLEMENTED, MISSING, NOT_ISA, PREFIX, ESCAPE)


@dataclass(frozen=True)
class FormFacts:
    """What the coverage report needs from one form (decoupled from ``reference.isa``)."""

    name: str
    opcode: Opcode
    digit: Optional[int]
    plus_r: bool
    untestable: str = ""


@dataclass
class Evidence:
    """What is known about the forms: implemented, cases and divergences per form, and the
    ids of known-divergence entries naming each form."""

    implemented: Set[str] = field(default_factory=set)
    cases: Dict[str, int] = field(default_factory=dict)
    divergent: Dict[str, int] = field(default_factory=dict)
    known: Dict[str, List[str]] = field(default_factory=dict)
    cross_cutting: List[str] = field(default_factory=list)  # known entries for all forms


@dataclass
class Slot:
    """A cell, or one /digit row of a group cell."""

    status: str
    forms: List[str] = field(default_factory=list)
    cases: int = 0
    divergent: int = 0
    why_untested: str = ""
    known: List[str] = field(default_factory=list)


@dataclass
class Cell:
    opcode: Opcode
    slot: Slot
    digits: Dict[int, Slot] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return " ".join(f"{b:02X}" for b in self.opcode)


def _judge(forms: List[FormFacts], evidence: Evidence, exists: bool) -> Slot:
    names = [f.name for f in forms]
    cases = sum(evidence.cases.get(n, 0) for n in names)
    divergent = sum(evidence.divergent.get(n, 0) for n in names)
    why = "; ".join(sorted({f.untestable for f in forms if f.untestable}))
    known = sorted({k for n in names for k in evidence.known.get(n, ())})
    if divergent or known:
        status = DIVERGENT
    elif cases:
        status = TESTED
    elif any(n in evidence.implemented for n in names):
        status = IMPLEMENTED
    elif forms or exists:
        status = MISSING
    else:
        status = NOT_ISA
    return Slot(status, names, cases, divergent, why, known)


def _covered_opcodes(form: FormFacts) -> Iterable[Opcode]:
    if not form.plus_r:
        return (form.opcode,)
    return tuple(form.opcode[:-1] + (form.opcode[-1] + r,) for r in range(8))


def build_map(forms: Iterable[FormFacts], evidence: Evidence,
              two_byte: bool) -> List[Cell]:
    """The 256 cells of one map, in opcode order."""
    by_opcode: Dict[Opcode, List[FormFacts]] = {}
    for form in forms:
        for opcode in _covered_opcodes(form):
            by_opcode.setdefault(opcode, []).append(form)
    cells = []
    for low in range(256):
        opcode: Opcode = (0x0F, low) if two_byte else (low,)
        here = by_opcode.get(opcode, [])
        if not two_byte and low in PREFIXES:
            cells.append(Cell(opcode, Slot(PREFIX)))
            continue
        if opcode in ESCAPES:
            cells.append(Cell(opcode, Slot(ESCAPE, why_untested=ESCAPES[opcode])))
            continue
        cell = Cell(opcode, _judge(here, evidence, in_isa(opcode)))
        if opcode in GROUP_DIGITS or any(f.digit is not None for f in here):
            for digit in range(8):
                subset = [f for f in here if f.digit == digit]
                cell.digits[digit] = _judge(subset, evidence, digit_in_isa(opcode, digit))
        cells.append(cell)
    return cells


def totals(cells: Iterable[Cell]) -> Mapping[str, int]:
    """How many cells (group rows counted one by one) have each status."""
    counts = dict.fromkeys(STATUSES, 0)
    for cell in cells:
        for slot in (cell.digits.values() if cell.digits else (cell.slot,)):
            counts[slot.status] += 1
    return counts


def forms_from_table(table: Iterable[object]) -> List[FormFacts]:
    """Adapt ``reference.isa`` forms (anything with name/enc/untestable) to ``FormFacts``."""
    facts = []
    for form in table:
        enc = form.enc  # type: ignore[attr-defined]
        facts.append(FormFacts(form.name, tuple(enc.opcode), enc.digit,  # type: ignore
                               enc.plus_r, form.untestable))  # type: ignore[attr-defined]
    return facts


def summary_rows(cells: List[Cell]) -> List[Tuple[str, str, int, int]]:
    """(opcode label, status, cases, divergent) for every slot, /digit rows included."""
    rows = []
    for cell in cells:
        rows.append((cell.label, cell.slot.status, cell.slot.cases, cell.slot.divergent))
        for digit, slot in cell.digits.items():
            rows.append((f"{cell.label} /{digit}", slot.status, slot.cases, slot.divergent))
    return rows
