"""The reference runner must work on a machine without Unicorn (it once imported the
Unicorn runner just for the register names)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["unicorn"] = None  # any import of unicorn now raises ImportError
from differential.runners.reference_runner import ReferenceRunner
from ground.case import PAGE_SIZE, Case

code = bytes.fromhex("01d8")  # add eax, ebx
page = code + bytes(PAGE_SIZE - len(code))
regs = dict(eax=2, ecx=0, edx=0, ebx=3, esp=0x1800, ebp=0, esi=0, edi=0, eip=0,
            eflags=0x2)
outcome = ReferenceRunner().run(Case("add", "prot32", code, regs, {0: page}))
print(outcome.regs["eax"], outcome.regs["eip"])
"""


def test_the_reference_runner_runs_a_case_with_unicorn_unimportable() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5", "2"]
