"""Cases on which Unicorn 2.1.4 aborts its process (LOCK BTC/BTS with a register
destination), built from an ordinary generated case by swapping in the bytes."""

from __future__ import annotations

from dataclasses import replace

from differential.draw import RandomDraw
from differential.generator import form_case
from differential.runners.unicorn_runner import linear_eip
from ground.case import PAGE_SIZE, Case

LOCK_BTC = bytes.fromhex("f00fbbc1")  # lock btc ecx, eax
LOCK_BTS = bytes.fromhex("f00fabc1")  # lock bts ecx, eax


def ordinary(mode: str, seed: int) -> Case:
    from reference import BY_NAME

    return form_case(BY_NAME["ADD_Ev_Gv"], mode, RandomDraw(seed), name=f"add-{mode}-{seed}")


def with_code(case: Case, code: bytes, name: str) -> Case:
    """``case`` with ``code`` written at its CS:EIP (which lies in one of its pages)."""
    start = linear_eip(case.mode, case.regs)
    memory = dict(case.memory)
    for offset, byte in enumerate(code):
        base = (start + offset) & ~(PAGE_SIZE - 1)
        page = bytearray(memory[base])
        page[(start + offset) - base] = byte
        memory[base] = bytes(page)
    return replace(case, code=code, memory=memory, name=name, form="")


def crashing(mode: str, code: bytes = LOCK_BTC, seed: int = 1) -> Case:
    """The first case from ``seed`` on whose pages ``code`` fits at CS:EIP."""
    while True:
        case = ordinary(mode, seed)
        start = linear_eip(mode, case.regs)
        if all((start + i) & ~(PAGE_SIZE - 1) in case.memory for i in range(len(code))):
            return with_code(case, code, f"{code.hex()}-{mode}")
        seed += 1
