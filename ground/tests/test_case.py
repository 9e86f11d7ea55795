"""``Case`` builds its fields in its own ``__init__`` (issue 18): it must stay the
dataclass it declares, frozen, checked, and ``dataclasses.replace``-able."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from ground.case import PAGE_SIZE, Case

PAGE = bytes(PAGE_SIZE)


def test_init_takes_the_fields_in_order_with_their_defaults() -> None:
    parameters = list(inspect.signature(Case.__init__).parameters.values())[1:]
    fields = dataclasses.fields(Case)
    assert [p.name for p in parameters] == [f.name for f in fields]
    assert [p.default for p in parameters] == \
        [inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
         for f in fields]


def test_a_case_is_what_its_arguments_say_and_stays_frozen() -> None:
    case = Case("n", "prot32", b"\x90", {"eax": 1}, {0x1000: PAGE}, "NOP", 0x10, "reg:eax:0xff")
    assert dataclasses.asdict(case) == {
        "name": "n", "mode": "prot32", "code": b"\x90", "regs": {"eax": 1},
        "memory": {0x1000: PAGE}, "form": "NOP", "undefined_flags": 0x10,
        "undefined_dest": "reg:eax:0xff"}
    assert Case("n", "real16", b"", {}, {}) == \
        Case(name="n", mode="real16", code=b"", regs={}, memory={}, form="",
             undefined_flags=0, undefined_dest="")
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.name = "other"  # type: ignore[misc]
    assert dataclasses.replace(case, name="m").name == "m"
    assert pickle.loads(pickle.dumps(case)) == case


@pytest.mark.parametrize("mode, memory, said", [
    ("prot64", {}, "unknown mode"),
    ("prot32", {0x1001: PAGE}, "not a 4 KiB-aligned"),
    ("prot32", {0x1000: PAGE[:-1]}, "4096-byte page"),
])
def test_a_case_that_breaks_the_conventions_is_refused(mode, memory, said) -> None:
    with pytest.raises(ValueError, match=said):
        Case("n", mode, b"", {}, memory)
    with pytest.raises(ValueError, match=said):
        dataclasses.replace(Case("n", "prot32", b"", {}, {}), mode=mode, memory=memory)
