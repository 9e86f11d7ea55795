"""Compare two outcomes of one case field by field.

Masked: exactly the EFLAGS bits and the destination the case says the SDM leaves
undefined for this execution (``Case.undefined_flags``, ``Case.undefined_dest``), and
nothing else. One thing is not compared because one side cannot observe it: the error
code of an exception when a runner reports none (Unicorn's interrupt hook gives only the
vector); both codes are compared whenever both runners report one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Mapping, Optional, Tuple

from ground.case import Case, Exc, Outcome

FLAG_NAMES = {0: "CF", 2: "PF", 4: "AF", 6: "ZF", 7: "SF", 8: "TF", 9: "IF", 10: "DF",
              11: "OF", 12: "IOPL0", 13: "IOPL1", 14: "NT", 16: "RF", 17: "VM", 18: "AC",
              19: "VIF", 20: "VIP", 21: "ID"}


@dataclass(frozen=True)
class Difference:
    """One field on which the runners disagree: ``eax``, ``eflags.ZF``, ``mem[0x2ffe]``,
    ``exception``. Values are ints, except for ``exception`` (a label)."""

    field: str
    left: object
    right: object

    def render(self, left_name: str, right_name: str) -> str:
        def show(value: object) -> str:
            return f"{value:#x}" if isinstance(value, int) else str(value)

        return f"{self.field}: {left_name}={show(self.left)} {right_name}={show(self.right)}"


def _parse_dest(spec: str) -> Tuple[Dict[str, int], Dict[int, bool]]:
    """(register -> ignored bits, set of ignored linear byte addresses) of a dest spec:
    one ``reg:``/``mem:`` item, or several separated by commas (FXSAVE's image has two
    ranges the SDM leaves to the implementation)."""
    regs: Dict[str, int] = {}
    addresses: Dict[int, bool] = {}
    for item in spec.split(",") if spec else ():
        if item.startswith("reg:"):
            _, name, mask = item.split(":")
            regs[name] = regs.get(name, 0) | int(mask, 16)
        elif item.startswith("mem:"):
            _, linear, size = item.split(":")
            start = int(linear, 16)
            for i in range(int(size)):
                addresses[(start + i) & 0xFFFFFFFF] = True
    return regs, addresses


def _exception_label(exc: Optional[Exc]) -> str:
    return "none" if exc is None else f"{exc.label()} {exc.kind}"


def _exceptions_differ(a: Optional[Exc], b: Optional[Exc]) -> bool:
    if a is None or b is None:
        return a is not b
    if (a.vector, a.kind) != (b.vector, b.kind):
        return True
    return a.error_code is not None and b.error_code is not None and \
        a.error_code != b.error_code


def _register_differences(case: Case, a: Mapping[str, int], b: Mapping[str, int],
                          ignored: Dict[str, int]) -> List[Difference]:
    out = []
    for name in sorted(set(a) | set(b), key=lambda n: (n == "eflags", n)):
        left, right = a.get(name), b.get(name)
        if name == "eflags" and left is not None and right is not None:
            diff = _defined_flag_differences(case, left, right)
            for bit in range(32):
                if diff >> bit & 1:
                    label = FLAG_NAMES.get(bit, f"bit{bit}")
                    out.append(Difference(f"eflags.{label}", left >> bit & 1, right >> bit & 1))
            continue
        keep = ~ignored.get(name, 0)
        if left is None or right is None or (left ^ right) & keep:
            out.append(Difference(name, left, right))
    return out


def _memory_differences(a: Mapping[int, bytes], b: Mapping[int, bytes],
                        ignored: Dict[int, bool]) -> List[Difference]:
    out = []
    for base in sorted(set(a) | set(b)):
        left, right = a.get(base), b.get(base)
        if left is None or right is None:
            out.append(Difference(f"page[{base:#x}]", "present" if left else "absent",
                                  "present" if right else "absent"))
            continue
        if left == right:
            continue
        for offset in _differing_offsets(left, right):
            if (base + offset) not in ignored:
                out.append(Difference(f"mem[{base + offset:#x}]", left[offset], right[offset]))
    return out


_STRETCH = 128  # bytes compared at once while looking for the differing ones


def _differing_offsets(left: bytes, right: bytes) -> List[int]:
    """Offsets at which two pages differ, in order. A page that differs at all differs in
    a few bytes (a store, an undefined destination): equal stretches are passed over a
    slice comparison at a time, where a byte-by-byte walk of the page cost ~250 µs, half
    the compare stage of a campaign (issue 18)."""
    out = []
    for start in range(0, len(left), _STRETCH):
        end = start + _STRETCH
        if left[start:end] != right[start:end]:
            out += [offset for offset in range(start, min(end, len(left)))
                    if left[offset] != right[offset]]
    return out


def _only_undefined_flags(case: Case, a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    """Whether the registers differ in EFLAGS bits the case leaves undefined and nowhere
    else: what ``compare`` would find no difference in, without building the list (8 %
    of a FORMS campaign's cases, at ~12 µs each: issue 18)."""
    if a.keys() != b.keys():
        return False
    for name, left in a.items():
        right = b[name]
        if left != right and (name != "eflags" or _defined_flag_differences(case, left, right)):
            return False
    return True


def _defined_flag_differences(case: Case, left: int, right: int) -> int:
    """The EFLAGS bits that differ and that the case does not leave undefined."""
    return (left ^ right) & ~case.undefined_flags


def compare(case: Case, a: Outcome, b: Outcome) -> List[Difference]:
    """Every difference between ``a`` and ``b`` that the SDM does not allow."""
    if a.memory == b.memory and a.exception == b.exception:
        if a.regs == b.regs:
            return []  # identical outcomes (most cases of a campaign): nothing to mask
        if _only_undefined_flags(case, a.regs, b.regs):
            return []  # the next most common: only undefined flags differ
    out: List[Difference] = []
    if _exceptions_differ(a.exception, b.exception):
        out.append(Difference("exception", _exception_label(a.exception),
                              _exception_label(b.exception)))
    ignored_regs, ignored_bytes = _parse_dest(case.undefined_dest)
    out += _register_differences(case, a.regs, b.regs, ignored_regs)
    out += _memory_differences(a.memory, b.memory, ignored_bytes)
    return out


def undefined_differences(case: Case, a: Outcome, b: Outcome,
                          unobservable: int = 0) -> List[Difference]:
    """The differences ``compare`` masks because the SDM leaves them undefined for this
    execution (the case's ``undefined_flags``/``undefined_dest``): not errors, but not
    agreement either; a report shows them in their own class. EFLAGS bits in
    ``unobservable`` (e.g. TF and RF in a user-mode stepper) are left out."""
    every = compare(replace(case, undefined_flags=unobservable, undefined_dest=""), a, b)
    allowed = set(compare(replace(case, undefined_flags=case.undefined_flags | unobservable),
                          a, b))
    return [d for d in every if d not in allowed]


def summary(differences: List[Difference], left: str, right: str, limit: int = 6) -> str:
    """The differing fields on one line (memory bytes beyond ``limit`` are counted)."""
    shown = [d.render(left, right) for d in differences[:limit]]
    if len(differences) > limit:
        shown.append(f"(+{len(differences) - limit} more)")
    return "; ".join(shown)

