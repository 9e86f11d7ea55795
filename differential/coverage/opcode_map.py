"""The one- and two-byte opcode maps as 16x16 grids of cells, each with a coverage status.

A cell gathers every form of ``FORMS`` whose opcode lands on it (``+r`` forms cover eight
cells); group opcodes (80-83, C0/C1, D0-D3, F6/F7, FE/FF, 0F BA, 0F C7...) also carry one
row per ModRM reg value. The x87 escapes D8-DF are two maps each (SDM Vol. 2, A.4): a
ModRM below C0 selects a memory form by its reg field (the ``/digit`` rows), and a ModRM
of C0-FF names a register form by the whole byte (``D9 E8`` is FLD1): those forms' keys
are two bytes, and they sit in the ESC cell's ``registers`` (ModRM -> slot). Status,
strongest first: divergent, tested, implemented, not implemented, not in the ISA;
prefixes and escapes are marked as such.

``group_rows`` sums the forms by family (``FormFacts.group``: user, system, x87), so a
report shows how far the system level and the x87 are implemented and tested.
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
    group: str = ""  # user, system or x87 (``forms_from_table``: the semantics' family)


@dataclass
class Evidence:
    """What is known about the forms: implemented, cases and divergences per form, and the
    ids of known-divergence entries naming each form."""

    implemented: Set[str] = field(default_factory=set)
    cases: Dict[str, int] = field(default_factory=dict)
    divergent: Dict[str, int] = field(default_factory=dict)
    known: Dict[str, List[str]] = field(default_factory=dict)
    cross_cutting: List[str] = field(default_factory=list)  # known entries for all forms
    oracles: Dict[str, Dict[str, int]] = field(default_factory=dict)  # form -> oracle -> n


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
    registers: Dict[int, Slot] = field(default_factory=dict)  # x87: ModRM C0-FF -> slot

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


X87_ESCAPES = range(0xD8, 0xE0)
NO_X87_REGISTER_FORM = ("no documented instruction with this ModRM (SDM Vol. 2, Tables "
                        "A-7 to A-22); undocumented aliases are not in the table")


def _covered_opcodes(form: FormFacts) -> Iterable[Opcode]:
    if not form.plus_r:
        return (form.opcode,)
    return tuple(form.opcode[:-1] + (form.opcode[-1] + r,) for r in range(8))


def is_x87_register_form(form: FormFacts) -> bool:
    """An ESC opcode with a ModRM of C0-FF as its second key byte (``D9 E8``, ``DE C0+r``)."""
    return len(form.opcode) == 2 and form.opcode[0] in X87_ESCAPES and form.opcode[1] >= 0xC0


def _x87_registers(escape: int, forms: List[FormFacts], evidence: Evidence) -> Dict[int, Slot]:
    """The 64 register-form slots of one ESC opcode, ModRM C0-FF."""
    slots = {}
    for modrm in range(0xC0, 0x100):
        here = [f for f in forms if (escape, modrm) in _covered_opcodes(f)]
        slot = _judge(here, evidence, bool(here))
        if not here:
            slot.why_untested = NO_X87_REGISTER_FORM
        slots[modrm] = slot
    return slots


def build_map(forms: Iterable[FormFacts], evidence: Evidence,
              two_byte: bool) -> List[Cell]:
    """The 256 cells of one map, in opcode order."""
    by_opcode: Dict[Opcode, List[FormFacts]] = {}
    for form in forms:
        for opcode in _covered_opcodes(form):
            by_opcode.setdefault(opcode, []).append(form)
    x87_registers: Dict[int, List[FormFacts]] = {}
    for form in forms:
        if is_x87_register_form(form):
            x87_registers.setdefault(form.opcode[0], []).append(form)
    cells = []
    for low in range(256):
        opcode: Opcode = (0x0F, low) if two_byte else (low,)
        here = by_opcode.get(opcode, [])
        registers = [] if two_byte else x87_registers.get(low, [])
        if not two_byte and low in PREFIXES:
            cells.append(Cell(opcode, Slot(PREFIX)))
            continue
        if opcode in ESCAPES:
            cells.append(Cell(opcode, Slot(ESCAPE, why_untested=ESCAPES[opcode])))
            continue
        cell = Cell(opcode, _judge(here + registers, evidence, in_isa(opcode)))
        if opcode in GROUP_DIGITS or any(f.digit is not None for f in here):
            for digit in range(8):
                subset = [f for f in here if f.digit == digit]
                cell.digits[digit] = _judge(subset, evidence, digit_in_isa(opcode, digit))
        if not two_byte and low in X87_ESCAPES:
            cell.registers = _x87_registers(low, registers, evidence)
        cells.append(cell)
    return cells


def totals(cells: Iterable[Cell]) -> Mapping[str, int]:
    """How many cells (group rows counted one by one) have each status."""
    counts = dict.fromkeys(STATUSES, 0)
    for cell in cells:
        for slot in (cell.digits.values() if cell.digits else (cell.slot,)):
            counts[slot.status] += 1
        for slot in cell.registers.values():
            counts[slot.status] += 1
    return counts


GROUPS = ("user", "system", "x87")


def group_rows(forms: Iterable[FormFacts], evidence: Evidence) -> Dict[str, Dict[str, object]]:
    """Per family of forms: how many there are, have semantics, have cases (vectors or
    campaign), diverge (or have a known divergence), cannot be tested (with a reason), the
    cases, and the cases per oracle that decided them (``agreement`` for version-1
    vectors on which Unicorn and the reference agreed, else the vector's oracle)."""
    rows: Dict[str, Dict[str, object]] = {}
    for form in forms:
        row = rows.setdefault(form.group or "user", {
            "forms": 0, "implemented": 0, "tested": 0, "divergent": 0, "untestable": 0,
            "cases": 0, "oracles": {}, "untested_forms": []})
        cases = evidence.cases.get(form.name, 0)
        row["forms"] += 1  # type: ignore[operator]
        row["implemented"] += form.name in evidence.implemented  # type: ignore[operator]
        row["tested"] += bool(cases)  # type: ignore[operator]
        row["divergent"] += bool(evidence.divergent.get(form.name)  # type: ignore[operator]
                                 or evidence.known.get(form.name))
        row["untestable"] += bool(form.untestable)  # type: ignore[operator]
        row["cases"] += cases  # type: ignore[operator]
        oracles = row["oracles"]
        for oracle, count in evidence.oracles.get(form.name, {}).items():
            oracles[oracle] = oracles.get(oracle, 0) + count  # type: ignore[index,union-attr]
        if not cases and not form.untestable:
            row["untested_forms"].append(form.name)  # type: ignore[union-attr]
    return {group: rows[group] for group in GROUPS if group in rows}


def form_group(form: object) -> str:
    """``system`` or ``x87`` when the form's semantics live in the reference's system
    instructions (``reference.semantics.system``) or its x87 package (``reference.x87``);
    ``user`` otherwise (a form without semantics: by its opcode, ESC D8-DF being x87)."""
    from reference.semantics import lookup

    function = lookup(form)
    module = getattr(function, "__module__", "") or ""
    if module.startswith("reference.x87") or (
            not module and form.enc.opcode[0] in X87_ESCAPES):  # type: ignore[attr-defined]
        return "x87"
    return "system" if module == "reference.semantics.system" else "user"


def forms_from_table(table: Iterable[object]) -> List[FormFacts]:
    """Adapt ``reference.isa`` forms (anything with name/enc/untestable) to ``FormFacts``."""
    facts = []
    for form in table:
        enc = form.enc  # type: ignore[attr-defined]
        facts.append(FormFacts(form.name, tuple(enc.opcode), enc.digit,  # type: ignore
                               enc.plus_r, form.untestable,  # type: ignore[attr-defined]
                               form_group(form)))
    return facts


def summary_rows(cells: List[Cell]) -> List[Tuple[str, str, int, int]]:
    """(opcode label, status, cases, divergent) for every slot, /digit rows included."""
    rows = []
    for cell in cells:
        rows.append((cell.label, cell.slot.status, cell.slot.cases, cell.slot.divergent))
        for digit, slot in cell.digits.items():
            rows.append((f"{cell.label} /{digit}", slot.status, slot.cases, slot.divergent))
    return rows
