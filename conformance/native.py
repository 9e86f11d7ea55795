"""The conformance engine ``native``: vectors through the stepper on this machine's CPU.

Only vectors that user mode can express are sent (``stepper.inexpressible_reason``); the
rest come back classified. Building, running and reading the stepper is the one driver's
business (``differential/runners/native_runner.py``), shared with the native oracle.
"""

from __future__ import annotations

from typing import Callable, List, Sequence

from conformance.stepper import inexpressible_reason
from differential.runners.native_runner import StepResult, encode, parse_output, run_natively
from ground.case import Case

Execute = Callable[[bytes], str]


def step_cases(cases: Sequence[Case], execute: Execute) -> List[StepResult]:
    """Classify, run the expressible cases with ``execute(input) -> output``, merge."""
    reasons = [inexpressible_reason(case) for case in cases]
    runnable = [case for case, reason in zip(cases, reasons) if not reason]
    ran = iter(parse_output(runnable, execute(encode(runnable))) if runnable else [])
    return [StepResult("inexpressible", reason=reason) if reason else next(ran)
            for reason in reasons]


def run_native(cases: Sequence[Case]) -> List[StepResult]:
    """Every case on this machine's CPU."""
    return step_cases(cases, run_natively)
