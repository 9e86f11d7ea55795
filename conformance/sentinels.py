"""Where a sentinel INT3 can stop a vector on an engine that ignores the trap flag.

v86 clears EFLAGS.TF whenever it loads EFLAGS (POPF, IRET; see known/v86.toml), so the
stepper's single-step trap never comes there and every vector would run on into its fill
bytes. The stepper then stops each vector at an INT3 placed where the instruction should
leave EIP: the vector's expected EIP when it expects no exception, the byte after the
instruction when it does (so an engine that fails to raise it still stops cleanly).

An INT3 changes one byte of the vector's memory, which the instruction might read or
write. So a sentinel is kept only where this machine's CPU gives the same outcome with it
(no TF) as with the single-step trap: the real CPU, not this module, decides.
"""

from __future__ import annotations

import hashlib
from typing import List, Sequence

from conformance.stepper import comparable_case
from differential.cpu_identity import this_cpu
from differential.runners.native_runner import (
    StepResult,
    Stop,
    build,
    encode,
    parse_output,
    run_natively,
)
from ground.cache import cache_file
from ground.case import PAGE_SIZE, Case, Outcome
from ground.compare import compare


def candidate(case: Case, expected: Outcome) -> Stop:
    """The sentinel address the vector suggests, before the CPU's check: in one of the
    vector's pages and not on the instruction's own bytes."""
    start = case.regs["eip"]
    if expected.exception is None:
        address = expected.regs["eip"]
    else:
        address = (start + len(case.code)) & 0xFFFFFFFF
    on_itself = start <= address < start + len(case.code)
    mapped = address - address % PAGE_SIZE in case.memory
    return Stop(None if on_itself or not mapped else address,
                expects_exception=expected.exception is not None)


def checked_stops(cases: Sequence[Case], expected: Sequence[Outcome]) -> List[Stop]:
    """``candidate`` for each case, keeping a sentinel only where this CPU's outcome with
    it equals the outcome under TF. Cached by the stepper and the input."""
    stops = [candidate(case, outcome) for case, outcome in zip(cases, expected)]
    data = encode(cases, stops)
    key = hashlib.sha256(build().name.encode() + this_cpu().describe().encode() +
                         data).hexdigest()[:16]  # this CPU decides: it is part of the key
    cached = cache_file("conformance", "sentinels", f"{key}.txt")
    if cached.exists():
        keep = cached.read_text("ascii")
    else:
        single_step = parse_output(cases, run_natively(encode(cases)))
        sentinel = parse_output(cases, run_natively(data, stop="sentinel"))
        keep = "".join("1" if _same(case, a, b) else "0"
                       for case, a, b in zip(cases, single_step, sentinel))
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(keep, "ascii")
    return [stop if flag == "1" else Stop(None, stop.expects_exception)
            for stop, flag in zip(stops, keep)]


def _same(case: Case, single_step: StepResult, sentinel: StepResult) -> bool:
    if single_step.status != "ran" or sentinel.status != "ran" or sentinel.outcome is None:
        return False
    return not compare(comparable_case(case), single_step.outcome, sentinel.outcome)

