"""Run vectors through the stepper: natively on this machine's CPU, or in a guest.

Only vectors that user mode can express are sent (``stepper.inexpressible_reason``); the
rest come back classified. A program that dies on a vector (a write into its own memory,
say) is restarted after it, so one bad vector costs one result, not the run.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from conformance.stepper import StepResult, build, encode, inexpressible_reason, parse_output
from ground.case import Case

MAX_RESTARTS = 50

Execute = Callable[[bytes], str]


def step_cases(cases: Sequence[Case], execute: Execute) -> List[StepResult]:
    """Classify, run the expressible cases with ``execute(input) -> output``, merge."""
    reasons = [inexpressible_reason(case) for case in cases]
    runnable = [case for case, reason in zip(cases, reasons) if not reason]
    ran = iter(parse_output(runnable, execute(encode(runnable))) if runnable else [])
    return [StepResult("inexpressible", reason=reason) if reason else next(ran)
            for reason in reasons]


def run_natively(data: bytes, binary: Optional[Path] = None, timeout: float = 600.0,
                 stop: str = "") -> str:
    """The stepper's output for input ``data``, run as a child process of ours;
    ``stop="sentinel"`` makes it stop vectors by their sentinels instead of TF."""
    env = dict(os.environ, X86LAB_STEPPER_STOP=stop) if stop else None
    binary = binary or build()
    with tempfile.TemporaryDirectory(prefix="x86lab-stepper-") as folder:
        path = Path(folder) / "vectors.bin"
        path.write_bytes(data)
        lines: List[str] = []
        for _ in range(MAX_RESTARTS):
            done = subprocess.run([str(binary), str(path), str(len(lines))],
                                  capture_output=True, text=True, timeout=timeout, env=env)
            lines += done.stdout.splitlines()
            if done.returncode == 0:
                break
            if done.returncode == 2 or done.returncode > 0 and done.returncode != 3:
                raise RuntimeError(f"stepper failed: {done.stderr.strip()[:300]}")
            lines.append(f"{len(lines)} C signal-{-done.returncode}")
    return "\n".join(lines) + "\n"


def run_native(cases: Sequence[Case]) -> List[StepResult]:
    """Every case on this machine's CPU."""
    return step_cases(cases, run_natively)

