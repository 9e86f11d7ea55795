"""Flags computed only where a branch is taken (``reference.blocks.lazy_flags``): the
block's state equals the interpreter's for every condition after every kind of setter,
taken or not, and the generated code does move the flag code where it applies.
Standard library only (runs under PyPy)."""

from __future__ import annotations

import random

import pytest

from reference.blocks.compiler import block_source
from reference.blocks.tests.machines import CODE, KINDS, both, second_run

SETTERS = {  # eax, ebx
    "cmp": "39d8", "test": "85d8", "add": "01d8", "sub": "29d8", "and": "21d8",
    "or": "09d8", "xor": "31d8", "adc": "11d8", "sbb": "19d8", "inc": "40", "dec": "48",
    "neg": "f7d8", "shl1": "d1e0", "sar1": "d1f8", "cmp_byte": "38d8",
}
VALUES = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x12345678)
OVERWRITE = "31c9"  # xor ecx, ecx: writes every status flag, so those of the setter are
# dead after the branch when it is not taken


def program(setter: str, cc: int, eax: int, ebx: int, carry: bool, after: str) -> bytes:
    """stc/clc; mov eax, A; mov ebx, B; <setter>; Jcc +2; <after>; inc edx; inc edx; hlt
    (taken: EDX += 1, not taken: the code after and EDX += 2)."""
    code = ("f9" if carry else "f8") + "b8" + eax.to_bytes(4, "little").hex() \
        + "bb" + ebx.to_bytes(4, "little").hex() + SETTERS[setter] \
        + f"{0x70 | cc:02x}" + f"{len(bytes.fromhex(after)) + 1:02x}" + after + "42" + "42f4"
    return bytes.fromhex(code)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setter", sorted(SETTERS))
def test_every_condition_after_every_setter_as_the_interpreter(kind: str, setter: str,
                                                               outcomes: list) -> None:
    draw = random.Random(f"{setter}-{kind}")
    for cc in range(16):
        for _ in range(3):
            eax, ebx = draw.choice(VALUES), draw.choice(VALUES)
            for after in (OVERWRITE, "90"):  # flags dead after the branch, or read there
                code = program(setter, cc, eax, ebx, draw.random() < 0.5, after + "9c")
                interpreted, _ = both(code, 100, kind)  # 9c: PUSHF shows EFLAGS
                compiled, _cpu = second_run(code, 100, kind)  # from a block at CODE
                assert interpreted == compiled, (setter, cc, hex(eax), hex(ebx), after)
    assert outcomes and all(isinstance(ran, int) for ran in outcomes)  # none raised


def _source(code: bytes) -> str:
    _state, cpu = second_run(code, 100, "flat")
    text = block_source(cpu, CODE)
    assert text is not None
    return text


@pytest.mark.parametrize("setter", ["cmp", "test", "sub", "and", "neg"])
@pytest.mark.parametrize("cc", range(16))
def test_the_flag_code_moves_into_the_taken_side(setter: str, cc: int) -> None:
    """SETTER; Jcc; XOR: the branch tests the setter's values, and the setter stores
    EFLAGS only inside the ``if`` (the XOR and INCs after it store theirs at the top
    level), for every condition."""
    text = _source(program(setter, cc, 5, 5, False, OVERWRITE))
    lines = text.splitlines()
    branch = next(n for n, line in enumerate(lines) if "_Jb" in line) + 1
    assert lines[branch].strip().startswith("if ") and "cpu.flags" not in lines[branch]
    stores = [line for line in lines if line.strip().startswith("cpu.flags.value =")]
    inside = [line for line in stores if line.startswith(" " * 8)]
    assert len(inside) == 1 and lines.index(inside[0]) > branch


@pytest.mark.parametrize("setter, cc, after", [
    ("cmp", 4, "90"),   # NOP after the branch: the flags stay live there (PUSHF reads)
    ("inc", 2, OVERWRITE),  # JC after INC: CF is the old one, kept by the store
])
def test_left_as_it_was_where_it_does_not_apply(setter: str, cc: int, after: str) -> None:
    text = _source(program(setter, cc, 5, 5, True, after + "9c"))
    lines = text.splitlines()
    branch = next(n for n, line in enumerate(lines) if "_Jb" in line) + 1
    assert "cpu.flags.value" in "\n".join(lines[branch:branch + 2])


def test_nothing_moves_past_a_statement_that_assigns_what_it_reads() -> None:
    """``split``: ``bits = x & 64`` may move after ``x = 0`` only if it does not read the
    ``x`` that statement assigns; the EFLAGS store is the last statement."""
    import ast

    from reference.blocks import lazy_flags

    store = "cpu.flags.value = cpu.flags.value & -65 | bits"
    moving = ast.parse(f"x = a\nbits = x & 64\nregs[0] = x\n{store}").body
    kept, sunk = lazy_flags.split(moving, 3, set())  # type: ignore[misc]
    assert [ast.unparse(s) for s in kept] == ["x = a", "regs[0] = x"]
    assert [ast.unparse(s) for s in sunk] == ["bits = x & 64", store]
    clash = ast.parse(f"x = a\nbits = x & 64\nx = 0\nregs[0] = x\n{store}").body
    assert lazy_flags.split(clash, 4, set()) is None
