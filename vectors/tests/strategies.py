"""Hypothesis strategies for random cases and outcomes, shared by the vector tests."""

from __future__ import annotations

from typing import Dict, Tuple

from hypothesis import strategies as st

from ground.case import GPRS, PAGE_SIZE, SEGMENTS, Case, Exc, Outcome

u32 = st.integers(0, 0xFFFF_FFFF)
u16 = st.integers(0, 0xFFFF)  # selectors (differential/case.py)


@st.composite
def pages(draw: st.DrawFn) -> Dict[int, bytes]:
    """One to three pages, mostly one fill byte with a sprinkling of other bytes."""
    bases = draw(st.sets(st.integers(0, 0xFFFFF).map(lambda n: n * PAGE_SIZE),
                         min_size=1, max_size=3))
    memory = {}
    for base in bases:
        page = bytearray([draw(st.integers(0, 255))]) * PAGE_SIZE
        for offset, byte in draw(st.dictionaries(st.integers(0, PAGE_SIZE - 1),
                                                 st.integers(0, 255), max_size=20)).items():
            page[offset] = byte
        memory[base] = bytes(page)
    return memory


def _undefined_dest(draw: st.DrawFn) -> Dict[str, str]:
    """``undefined_dest`` where this checkout's Case has the field (added by differential)."""
    if "undefined_dest" not in Case.__dataclass_fields__:
        return {}
    return {"undefined_dest": draw(st.sampled_from(["", "reg:eax:0xffff", "mem:0x2ffe:4"]))}


def _fetch_address(mode: str, regs: Dict[str, int]) -> int:
    """Where the CPU fetches: CS * 16 + IP in real mode, EIP with flat segments (SDM 3A, 20.1.1)."""
    if mode == "real16":
        return (regs["cs"] * 16 + (regs["eip"] & 0xFFFF)) % (1 << 32)
    return regs["eip"]


def _with_code(memory: Dict[int, bytes], code: bytes, address: int) -> Dict[int, bytes]:
    """``memory`` with the instruction's page mapped and its bytes stored there (as a real
    case has them); bytes running past that page go to the next one only if it is mapped."""
    memory = dict(memory)
    memory.setdefault(address - address % PAGE_SIZE, bytes(PAGE_SIZE))
    for offset, byte in enumerate(code):
        linear = (address + offset) % (1 << 32)
        base = linear - linear % PAGE_SIZE
        if base not in memory:
            break
        page = bytearray(memory[base])
        page[linear % PAGE_SIZE] = byte
        memory[base] = bytes(page)
    return memory


@st.composite
def case_and_outcome(draw: st.DrawFn) -> Tuple[Case, Outcome]:
    mode = draw(st.sampled_from(["real16", "prot32"]))
    names = GPRS + ("eip", "eflags") + (SEGMENTS if mode == "real16" else ())
    regs = {name: draw(u16 if name in SEGMENTS else u32) for name in names}
    code = draw(st.binary(min_size=1, max_size=15))
    memory = _with_code(draw(pages()), code, _fetch_address(mode, regs))
    case = Case(name=draw(st.text(min_size=1, max_size=12)), mode=mode,
                code=code, regs=regs, memory=memory,
                form=draw(st.sampled_from(["", "ADD_Ev_Gv", "DIV_Ev"])),
                undefined_flags=draw(st.integers(0, 0xFFF)),
                **_undefined_dest(draw))
    final_regs = {name: draw(st.one_of(st.just(value), u16 if name in SEGMENTS else u32))
                  for name, value in regs.items()}
    final_memory = dict(memory)
    base = draw(st.sampled_from(sorted(memory)))
    page = bytearray(memory[base])
    for offset, byte in draw(st.dictionaries(st.integers(0, PAGE_SIZE - 1),
                                             st.integers(0, 255), max_size=8)).items():
        page[offset] = byte
    final_memory[base] = bytes(page)
    exception = draw(st.one_of(
        st.none(),
        st.builds(Exc, vector=st.integers(0, 255), kind=st.sampled_from(["fault", "trap"]),
                  error_code=st.one_of(st.none(), st.integers(0, 0xFFFF))),
        st.just(Exc(vector=-1, kind="unmapped"))))
    notes = draw(st.dictionaries(st.sampled_from(["engine", "why"]), st.text(max_size=8)))
    return case, Outcome(regs=final_regs, memory=final_memory, exception=exception, notes=notes)
