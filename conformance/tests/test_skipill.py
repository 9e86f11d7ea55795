"""``guest/skipill.c``: a program that meets an instruction the CPU refuses goes on past it,
and says where; without the map it dies as before. ``ud2`` stands in for an instruction an
engine lacks (it raises #UD, hence SIGILL, on every CPU)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conformance import instruction_map
from conformance.test_i386 import SKIP_ILLEGAL

PROGRAM = r"""
#include <stdio.h>
int main(void) {
    printf("before\n");
    fflush(stdout);
    asm volatile("ud2");
    printf("after\n");
    asm volatile(".byte 0x0f, 0xff, 0xc0");  /* ud0 eax, eax: 3 bytes */
    printf("end\n");
    return 0;
}
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None or shutil.which("objdump") is None:
        pytest.skip("needs gcc and objdump")
    folder = tmp_path_factory.mktemp("skipill")
    (folder / "p.c").write_text(PROGRAM)
    binary = folder / "p"
    done = subprocess.run(["gcc", "-m32", "-static", "-O0", "-o", str(binary),
                           str(folder / "p.c"), str(SKIP_ILLEGAL)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot build 32-bit static programs here: {done.stderr[:200]}")
    return binary


def test_the_map_knows_the_refused_instructions(program: Path) -> None:
    entries = dict(instruction_map.instructions(program))
    assert instruction_map.decode(instruction_map.encode(sorted(entries.items()))) == \
        sorted(entries.items())
    code = program.read_bytes()
    assert b"\x0f\x0b" in code and 2 in entries.values() and 3 in entries.values()


def test_each_refused_instruction_is_recorded_and_stepped_over(program: Path,
                                                                tmp_path: Path) -> None:
    log = tmp_path / "skipped"
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=30,
                          env={"X86LAB_INSN_MAP": str(instruction_map.write_map(program)),
                               "X86LAB_SKIP_LOG": str(log)})
    assert done.returncode == 0
    assert done.stdout == "before\nafter\nend\n"
    lines = log.read_text().splitlines()
    assert [line.split(" bytes=")[1] for line in lines] == ["0f 0b", "0f ff c0"]
    assert all(line.startswith("skipped eip=") for line in lines)


def test_without_the_map_the_program_dies_as_before(program: Path) -> None:
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=30, env={})
    assert done.returncode == -signal.SIGILL
    assert done.stdout == "before\n"
