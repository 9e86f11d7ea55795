"""``reference`` must run on Debian's PyPy (Python 3.9): import every module there and
execute a few instructions. Skipped when no ``pypy3`` is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import pkgutil, importlib, reference
for info in pkgutil.walk_packages(reference.__path__, "reference."):
    if ".tests" not in info.name:
        importlib.import_module(info.name)
from reference import Cpu, SparseMemory
mem = SparseMemory(); mem.map(0x1000, bytes.fromhex("b8 05 00 00 00 83 c0 03 f4"))
cpu = Cpu(mem, "prot32"); cpu.set_reg("eip", 0x1000)
result = cpu.run(10)
print(cpu.get_reg("eax"), result.halted)
"""


@pytest.mark.skipif(shutil.which("pypy3") is None, reason="pypy3 is not installed")
def test_reference_runs_on_pypy3() -> None:
    done = subprocess.run(["pypy3", "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8", "True"]
