"""Every form, through both of the reference's paths (issue 14): the interpreter
(``step()``, the oracle of the fast path) and the block compiler's generated code
(``ReferenceRunner(compiled=True)``: the instruction as a one-instruction block, run by
``run()`` as any block is, a fault replayed through ``step()``). Both paths must leave
the same registers, flags, memory and exception on random states of every form in
32-bit protected mode (16-bit code is never compiled). The slow test draws four times
as many states again."""

from __future__ import annotations

import pytest

from differential.draw import RandomDraw
from differential.generator import form_case
from differential.runners.reference_runner import ReferenceRunner
from differential.suite import forms_to_test, implemented

STATES = 4
IMPLEMENTED = implemented()


def _params():
    out = []
    for form, mode in forms_to_test():
        if mode != "prot32" or form.not_version1 or not IMPLEMENTED.get(form.name):
            continue
        out.append(pytest.param(form, mode, id=f"{form.name}-{mode}"))
    return out


PARAMS = _params()


def _both(form, mode, seed):
    case = form_case(form, mode, RandomDraw(seed), state=RandomDraw(seed ^ 0x5A5A))
    compiled = ReferenceRunner(compiled=True)
    return case, ReferenceRunner().run(case), compiled.run(case), compiled.blocks_run


def _compare(form, mode, seeds):
    for seed in seeds:
        case, interpreted, compiled, _ = _both(form, mode, seed)
        assert compiled == interpreted, (
            f"{form.name} {mode} seed {seed}: code {case.code.hex()}\n"
            f"interpreter {interpreted}\ncompiled    {compiled}")


@pytest.mark.parametrize("form, mode", PARAMS)
def test_compiled_path_matches_interpreter(form, mode):
    _compare(form, mode, range(STATES))


@pytest.mark.slow
@pytest.mark.parametrize("form, mode", PARAMS)
def test_compiled_path_matches_interpreter_more_states(form, mode):
    _compare(form, mode, range(STATES, 5 * STATES))


def test_most_forms_really_ran_compiled():
    """The comparison above means something only if the compiled path ran: most forms'
    cases must have been made into blocks (barriers such as I/O, far transfers and
    system instructions stay interpreted by design, see reference.blocks.compiler)."""
    made = sum(_both(form, mode, 0)[3] for form, mode in
               (p.values for p in PARAMS))
    assert made > 0.8 * len(PARAMS), f"{made} of {len(PARAMS)} forms ran compiled"
