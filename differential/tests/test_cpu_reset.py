"""``Cpu.reset`` must leave nothing of the last case: the differential's ReferenceRunner
reuses one Cpu per mode (issue 18), so a reset Cpu has to be a fresh one in every
attribute, and the outcomes of campaign cases must not change.

The oracle is a fresh ``Cpu``: whole states (every attribute, objects by their fields,
paging's per-instance access methods by name) are compared after the Cpu ran programs
that fault, write memory, load segments, change flags, the x87 state, control registers
and turn paging on."""

from __future__ import annotations

from types import FunctionType, MethodType
from typing import Any, Dict, List, Set

import pytest

from differential import campaign
from differential.runners.reference_runner import ReferenceRunner
from reference import Cpu, SparseMemory
from reference.memory import PAGE_SIZE

CODE, DATA, STACK, DIRECTORY = 0x1000, 0x2000, 0x3000, 0x4000

PROT32_PROGRAM = [
    "fd",                    # std: DF = 1
    "f9",                    # stc: CF = 1
    "c7050020000078563412",  # mov dword [0x2000], 0x12345678: a memory write
    "68efbeadde",            # push 0xdeadbeef: a stack write, ESP moves
    "d9e8",                  # fld1: the x87 stack gains a register
    "d9eb",                  # fldpi
    "31c0",                  # xor eax, eax
    "8ed8",                  # mov ds, ax: a null selector in DS (its limits become -1)
    "b800400000",            # mov eax, 0x4000
    "0f22d8",                # mov cr3, eax
    "0f20c0",                # mov eax, cr0
    "0d00000080",            # or eax, 0x80000000: PG
    "0f22c0",                # mov cr0, eax: paging on, the access methods replaced
]
REAL16_PROGRAM = [
    "fd",          # std
    "b83412",      # mov ax, 0x1234
    "8ed8",        # mov ds, ax: DS base 0x12340
    "8ec0",        # mov es, ax
    "9c",          # pushf: a stack write
    "d9ee",        # fldz
    "fa",          # cli: IF = 0
    "31c9",        # xor cx, cx
    "f7f1",        # div cx: #DE (the state rolls back, the fault is reported)
]


def _state(value: Any, seen: Set[int]) -> Any:
    """A comparable picture of ``value``: scalars as they are, containers item by item,
    objects as (class, fields), functions and bound methods by name; an object met
    twice (the Cpu, from a decoded operand) by its class."""
    if isinstance(value, (int, str, float, bytes, type(None))):
        return value
    if isinstance(value, MethodType):
        return ("method", value.__func__.__qualname__)
    if isinstance(value, FunctionType):
        return ("function", value.__qualname__)
    if id(value) in seen:
        return ("again", type(value).__qualname__)
    seen.add(id(value))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_state(item, seen) for item in value])
    if isinstance(value, dict):
        return ("dict", [(repr(k), _state(v, seen)) for k, v in value.items()])
    if hasattr(value, "__dict__"):
        fields: Dict[str, Any] = dict(vars(value))
    else:
        fields = {slot: getattr(value, slot) for slot in getattr(type(value), "__slots__", ())
                  if hasattr(value, slot)}
    return (type(value).__qualname__,
            [(name, _state(field, seen)) for name, field in sorted(fields.items())])


def whole_state(cpu: Cpu) -> Any:
    """Every attribute of ``cpu`` but its memory, which is compared by its pages."""
    fields = {name: value for name, value in vars(cpu).items() if name != "mem"}
    return _state(fields, {id(cpu)})


def _memory(program: List[str]) -> SparseMemory:
    """Code at CODE, and zeroed data, stack and page-directory pages."""
    code = bytes.fromhex("".join(program))
    memory = SparseMemory()
    memory.map(CODE, code + bytes(PAGE_SIZE - len(code)))
    for base in (DATA, STACK, DIRECTORY):
        memory.map(base, bytes(PAGE_SIZE))
    return memory


def _run(cpu: Cpu, steps: int) -> List[Any]:
    """Step ``steps`` instructions from CODE (stack at the top of STACK)."""
    cpu.eip = CODE if cpu.mode == "prot32" else CODE & 0xF  # real16: CS 0x100, below
    if cpu.mode == "real16":
        cpu.set_reg("cs", CODE >> 4)
        cpu.set_reg("ss", STACK >> 4)
        cpu.regs[4] = 0x800
    else:
        cpu.regs[4] = STACK + 0x800
    return [cpu.step() for _ in range(steps)]


@pytest.mark.parametrize("mode, program", [("prot32", PROT32_PROGRAM),
                                           ("real16", REAL16_PROGRAM)], ids=["prot32", "real16"])
@pytest.mark.parametrize("into", ["prot32", "real16"])
def test_a_reset_cpu_is_a_fresh_cpu_after_a_program_that_changes_everything(
        mode: str, program: List[str], into: str) -> None:
    cpu = Cpu(_memory(program), mode)
    fresh_picture = whole_state(Cpu(SparseMemory(), mode))
    results = _run(cpu, len(program))
    assert whole_state(cpu) != fresh_picture  # the program changed the state
    if mode == "prot32":  # what the program did, so the reset below has work to do
        assert cpu.cr0 >> 31 == 1 and "read_linear" in vars(cpu)
        assert cpu.mem.read_int(DATA, 4) == 0x12345678
        # DF from STD; SF from OR's negative result (which clears CF)
        assert cpu.flags.value & 0x481 == 0x480 and cpu.fpu.top == 6
    else:
        assert results[-1].exception is not None and results[-1].exception.vector == 0
        assert cpu.seg_base[3] == 0x12340 and cpu.fpu.top == 7
    memory = SparseMemory()
    cpu.reset(into, memory=memory)
    assert cpu.mem is memory
    assert whole_state(cpu) == whole_state(Cpu(SparseMemory(), into))


@pytest.mark.parametrize("mode, program", [("prot32", PROT32_PROGRAM),
                                           ("real16", REAL16_PROGRAM)], ids=["prot32", "real16"])
def test_a_program_runs_on_a_reset_cpu_as_on_a_fresh_one(mode: str,
                                                         program: List[str]) -> None:
    used = Cpu(_memory(program), mode)
    _run(used, len(program))
    used.reset(memory=_memory(program))
    fresh = Cpu(_memory(program), mode)
    for steps in range(1, len(program) + 1):  # the same states, instruction by instruction
        assert [r.exception for r in _run(used, 1)] == [r.exception for r in _run(fresh, 1)]
        assert whole_state(used) == whole_state(fresh)
        assert used.mem.pages() == fresh.mem.pages()
        if steps < len(program):  # _run starts again from CODE: resume where it was
            used.eip = fresh.eip = (CODE if mode == "prot32" else 0) + sum(
                len(bytes.fromhex(insn)) for insn in program[:steps])


def test_campaign_cases_give_the_same_outcomes_on_the_reused_cpu() -> None:
    """Both modes, every kind of case the campaign draws (faults, memory writes, segment
    loads, x87): one runner for all of them against a new runner (a new Cpu) per case."""
    plan = campaign.Plan(seed=7, jobs=1)
    forms = campaign.testable_forms(plan.forms)
    reused = ReferenceRunner()
    cases = [campaign.draw_case(plan, forms, 1 + i // campaign.BATCH, i % campaign.BATCH)[0]
             for i in range(600)]
    assert {case.mode for case in cases} == {"prot32", "real16"}
    faults = 0
    for case in cases:
        mine, theirs = reused.run(case), ReferenceRunner().run(case)
        assert mine == theirs, case
        faults += mine.exception is not None
    assert faults > 0  # faulting cases were among them


def test_final_pages_copy_only_what_changed() -> None:
    """``SparseMemory.final``: the loaded object back for an unchanged page (no copy),
    the new bytes for a written one."""
    loaded = {0: bytes(PAGE_SIZE), PAGE_SIZE: b"\xff" * PAGE_SIZE}
    memory = SparseMemory()
    for base, data in loaded.items():
        memory.map(base, data)
    memory.write_int(PAGE_SIZE + 2, 2, 0x1234)
    final = memory.final(loaded)
    assert final[0] is loaded[0]
    assert final[PAGE_SIZE] == b"\xff\xff\x34\x12" + b"\xff" * (PAGE_SIZE - 4)
    assert type(final[PAGE_SIZE]) is bytes
