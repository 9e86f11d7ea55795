"""Run vectors through the stepper: natively on this machine's CPU, or in a guest.

Only vectors that user mode can express are sent (``stepper.inexpressible_reason``); the
rest come back classified. A program that dies on a vector (a write into its own memory,
say) is restarted after it, so one bad vector costs one result, not the run.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence

from conformance.stepper import StepResult, build, encode, inexpressible_reason, parse_output
from differential.case import Case

if TYPE_CHECKING:
    from harness.guest import Guest

MAX_RESTARTS = 50
# The shell loop a guest runs: the same restart rule as ``run_native``, in busybox sh.
GUEST_LOOP = """#!/bin/sh
# Run the stepper over $1, restarting after the record it died on; output to $2; $3 lists
# records not to run (they killed the emulator on an earlier boot).
echo 0 > /proc/sys/vm/mmap_min_addr 2>/dev/null
: > "$2"; next=0; tries=0
while [ $tries -lt {restarts} ]; do
  "$(dirname "$0")/stepper" "$1" $next "$3" >> "$2" && break
  status=$?
  next=$(wc -l < "$2"); echo "$next C signal-$((status - 128))" >> "$2"
  next=$((next + 1)); tries=$((tries + 1))
done
""".replace("{restarts}", str(MAX_RESTARTS))

Execute = Callable[[bytes], str]


def step_cases(cases: Sequence[Case], execute: Execute) -> List[StepResult]:
    """Classify, run the expressible cases with ``execute(input) -> output``, merge."""
    reasons = [inexpressible_reason(case) for case in cases]
    runnable = [case for case, reason in zip(cases, reasons) if not reason]
    ran = iter(parse_output(runnable, execute(encode(runnable))) if runnable else [])
    return [StepResult("inexpressible", reason=reason) if reason else next(ran)
            for reason in reasons]


def run_natively(data: bytes, binary: Optional[Path] = None, timeout: float = 600.0) -> str:
    """The stepper's output for input ``data``, run as a child process of ours."""
    binary = binary or build()
    with tempfile.TemporaryDirectory(prefix="x86lab-stepper-") as folder:
        path = Path(folder) / "vectors.bin"
        path.write_bytes(data)
        lines: List[str] = []
        for _ in range(MAX_RESTARTS):
            done = subprocess.run([str(binary), str(path), str(len(lines))],
                                  capture_output=True, text=True, timeout=timeout)
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


def guest_files(cases: Sequence[Case]) -> dict:
    """What the vectors suite puts into a guest image: the stepper, its loop, its input
    (only the expressible cases, in order)."""
    runnable = [case for case in cases if not inexpressible_reason(case)]
    return {"stepper": build().read_bytes(), "step.sh": GUEST_LOOP.encode(),
            "vectors.bin": encode(runnable)}


class EngineDied(RuntimeError):
    """The emulator itself went away while running vector ``index`` (of the runnable ones)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"the engine died on vector #{index}: {message}")
        self.index = index


def _last_marker(log: Path) -> int:
    """The index of the last "@N" marker the stepper wrote to the console (-1: none)."""
    text = log.read_bytes().decode("latin-1") if log.exists() else ""
    found = [int(m) for m in re.findall(r"^@(\d+)\r?$", text, re.MULTILINE)]
    return found[-1] if found else -1


def _gist(message: str) -> str:
    """The first line of an engine's exit message and its error line (``RangeError: ...``),
    without the stack frames between."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line and not line.startswith("at ")]
    return "; ".join(lines[:1] + errors[:1])


def run_in_guest(guest: Guest, cases: Sequence[Case], skip: Sequence[int] = (),
                 timeout: float = 1800.0) -> List[StepResult]:
    """Every case in a booted guest whose image carries ``guest_files(cases)``; ``skip``
    names runnable indices not to run. Raises ``EngineDied`` if the emulator exits."""
    from conformance.guest_session import GUEST_DIR, fetch_text
    from harness.engines import SessionClosed

    skip_list = ",".join(str(i) for i in skip) or "-"

    def execute(_data: bytes) -> str:
        try:
            guest.console.run_check(f"sh {GUEST_DIR}/step.sh {GUEST_DIR}/vectors.bin "
                                    f"/tmp/step.out {skip_list}", timeout=timeout)
            return fetch_text(guest, "/tmp/step.out", timeout)
        except SessionClosed as exc:
            raise EngineDied(_last_marker(guest.log_path), _gist(str(exc))) from None

    return step_cases(cases, execute)
