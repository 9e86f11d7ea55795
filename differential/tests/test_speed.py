"""The benchmark programs are what they claim, run alike on the reference and Unicorn, and
the bench emits well-formed figures (no timing is asserted)."""

from __future__ import annotations

import json
import shutil

import pytest
from capstone import CS_ARCH_X86, CS_MODE_32, Cs
from unicorn import UC_ARCH_X86, UC_MODE_32, Uc
from unicorn import x86_const as X

from reference.benchmark import CODE, DATA, PAGES, PROGRAMS, data_page, run_to_halt
from vectors.files import write_vectors
from vectors.format import make_header
from vectors.tests.nop_runner import nop_pair
from x86lab.cli import EXIT_OK, main

ITERATIONS = 37
GPRS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_decodes_to_its_counted_instructions(name):
    program = PROGRAMS[name]
    code = program.code(ITERATIONS)
    insns = list(Cs(CS_ARCH_X86, CS_MODE_32).disasm(code, CODE))
    assert sum(i.size for i in insns) == len(code)
    assert insns[-1].mnemonic == "hlt" and insns[-1].address == program.hlt_address(ITERATIONS)
    straight_line = len(insns) - 1                      # all but HLT, the loop once
    assert program.instructions(1) == straight_line


def _unicorn_final(name: str):
    program = PROGRAMS[name]
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    for base in PAGES:
        uc.mem_map(base, 0x1000)
    uc.mem_write(CODE, program.code(ITERATIONS))
    uc.mem_write(DATA, data_page())
    uc.emu_start(CODE, program.hlt_address(ITERATIONS))
    regs = {n: uc.reg_read(getattr(X, f"UC_X86_REG_{n.upper()}")) for n in GPRS}
    return regs, bytes(uc.mem_read(DATA, 0x1000)), bytes(uc.mem_read(PAGES[2], 0x1000))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_reference_ends_each_program_in_unicorns_state(name):
    regs, data, stack = _unicorn_final(name)
    cpu = run_to_halt(PROGRAMS[name], ITERATIONS)
    assert {n: cpu.get_reg(n) for n in GPRS} == regs
    pages = cpu.mem.pages()
    assert (pages[DATA], pages[PAGES[2]]) == (data, stack)


def _bench(tmp_path, pypy: str):
    write_vectors(tmp_path / "c" / "nop.jsonl.gz", make_header(), [nop_pair("nop")])
    out = tmp_path / "bench.json"
    assert main(["bench", "--seconds", "0.05", "--corpus", str(tmp_path / "c"),
                 "--pypy", pypy, "--json", str(out)]) == EXIT_OK
    return json.loads(out.read_text())


def _positive(value) -> bool:
    return isinstance(value, float) and value > 0


def test_bench_emits_figures_beside_unicorns(tmp_path):
    figures = _bench(tmp_path, pypy="")
    for row in figures["programs"].values():
        assert _positive(row["cpython_ips"]) and _positive(row["unicorn_ips"])
        assert row["cpython_ratio"] == pytest.approx(row["cpython_ips"] / row["unicorn_ips"])
        assert _positive(row["cpython_blocks_ips"])  # the block compiler's path beside it
    assert figures["interpreters"]["cpython_blocks"]["implementation"] == "CPython"
    cases = figures["cases"]
    assert all(_positive(cases[k]) for k in ("reference_cps", "unicorn_cps", "differential_cps",
                                             "campaign_cps", "differential_ratio"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pypy3") is None, reason="Debian pypy3 not installed")
def test_bench_runs_the_reference_under_pypy(tmp_path):
    figures = _bench(tmp_path, pypy="pypy3")
    assert figures["interpreters"]["pypy"]["implementation"] == "PyPy"
    assert all(_positive(row["pypy_ips"]) for row in figures["programs"].values())
