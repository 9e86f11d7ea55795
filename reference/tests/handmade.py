"""Hand-built single-instruction cases for the semantics tests.

``unicorn_check.random_case`` draws every register at random; edge cases (a count of 31,
a divisor of -1, a bit offset below the base) need exact values instead. ``run`` executes
one on the reference; ``unicorn_disagreements`` runs the same bytes and state on Unicorn
too and lists the differences (only the table's undefined flags for this execution are
masked), so a test's expected values never come from the code under test.

Unicorn is imported on first use, not here: the reference-only helpers must load under
pypy3, which has no Unicorn, and a test that reaches a Unicorn comparison there is
skipped (``third_party.require``; under CPython a missing Unicorn stays an error).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable, Dict, Iterable, List, Tuple

import pytest

from ground.case import Case
from reference import FORMS, Cpu, Form, StepResult
from reference.isa.decoder import decode
from reference.tests.conftest import CODE, DATA, STACK_TOP, make_cpu
from reference.tests.third_party import require

PAGE = 4096
STACK_PAGE = STACK_TOP & ~(PAGE - 1)
SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss")
Check = Tuple[bytes, bytes, Dict[str, int]]  # code, data page contents, registers


def _registers(mode: str, regs: dict) -> dict:
    """Every register the runner interface wants: zero unless given; EFLAGS bit 1 set."""
    full = {name: 0 for name in ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")}
    full.update(eip=CODE, esp=STACK_TOP, eflags=2)
    if mode == "real16":
        full.update({seg: 0 for seg in SEGMENTS})
    full.update(regs)
    full["eflags"] |= 2
    return full


def unicorn_check() -> ModuleType:
    """``reference.tests.unicorn_check`` (the Unicorn side), imported when first needed."""
    require("unicorn")
    return importlib.import_module("reference.tests.unicorn_check")


def compare(form: Form, case: Case) -> List[str]:
    """``unicorn_check.compare``: what the reference and Unicorn disagree on for ``case``."""
    return unicorn_check().compare(form, case)


def make_case(code: bytes, mode: str = "prot32", data: bytes = b"", **regs: int) -> Case:
    """``code`` at CODE, ``data`` at the start of the data page DATA, a zeroed stack page;
    in real16 every segment register is 0 so offsets are linear addresses."""
    memory = {CODE: code.ljust(PAGE, b"\x90"), DATA: data.ljust(PAGE, b"\0"),
              STACK_PAGE: bytes(PAGE)}
    return Case(name=f"handmade-{code.hex()}", mode=mode, code=code,
                regs=_registers(mode, regs), memory=memory)


def run(code: bytes, mode: str = "prot32", data: bytes = b"",
        **regs: int) -> Tuple[Cpu, StepResult]:
    """Execute one instruction on the reference; the CPU and how the step ended."""
    cpu = make_cpu(code, mode)
    cpu.mem.write_bytes(DATA, data)
    for name, value in _registers(mode, regs).items():
        cpu.set_reg(name, value)
    return cpu, cpu.step()


def unicorn_disagreements(code: bytes, mode: str = "prot32", data: bytes = b"",
                          **regs: int) -> List[str]:
    """What the reference and Unicorn disagree on for this case (empty: they agree)."""
    probe = make_cpu(code, mode)
    form = decode(probe, CODE, probe.fetch_byte).form
    return compare(form, make_case(code, mode, data, **regs))


def assert_unicorn_agrees(mode: str, checks: Iterable[Check]) -> None:
    """Fail with one line per (code, data, registers) check where the reference and Unicorn
    differ (the first ten): the bytes, the registers given and what differed."""
    lines = []
    for code, data, regs in checks:
        problems = unicorn_disagreements(code, mode, data, **regs)
        if problems:
            given = " ".join(f"{name}={value:#x}" for name, value in regs.items())
            lines.append(f"{code.hex()} {given}: " + "; ".join(problems))
    assert not lines, "\n".join(lines[:10])


def data_word(cpu: Cpu, offset: int, nbytes: int) -> int:
    """The little-endian value of ``nbytes`` at DATA + offset after the instruction."""
    return cpu.read_linear(DATA + offset, nbytes)


def forms_of(*mnemonics: str) -> List[Tuple[Form, str]]:
    """(form, mode) pairs of these mnemonics that the differential tester can run."""
    return [(form, mode) for form in FORMS if form.mnemonic in mnemonics
            and not form.not_version1 for mode in form.modes]


def random_disagreements(form: Form, mode: str, seeds: int) -> List[str]:
    """Seeded random cases of ``form`` (``unicorn_check.random_case``) where the reference
    and Unicorn differ, one line each."""
    failures = []
    for seed in range(seeds):
        case = unicorn_check().random_case(form, mode, seed)
        problems = compare(form, case)
        if problems:
            failures.append(f"{case.code.hex(' ')}: " + "; ".join(problems))
    return failures


def random_case_test(*mnemonics: str, seeds: int = 16) -> Callable[[Form, str], None]:
    """A pytest test that compares every form of these mnemonics with Unicorn on seeded
    random cases; a family's test module assigns it to a ``test_...`` name."""
    pairs = forms_of(*mnemonics)

    @pytest.mark.parametrize("form,mode", pairs, ids=[f"{f.name}-{m}" for f, m in pairs])
    def test(form: Form, mode: str) -> None:
        failures = random_disagreements(form, mode, seeds)
        assert not failures, "\n".join(failures[:5])

    return test
