"""The boot stages the harness recognises on a serial console, in the order they occur.

A stage is *reached* when its pattern first appears after the previous stage's: the firmware
runs from power-on until the kernel prints ``Linux version``; the kernel runs until the
image's /init prints BOOT_MARKER; init runs until the shell prints PROMPT. Engines time the
marks (and v86 counts instructions at them); the console waits for them with a timeout each.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from images.contract import BOOT_MARKER, PROMPT

# (mark name, the bytes that announce it). The span *before* a mark is named in SPANS.
MARKS: Tuple[Tuple[str, bytes], ...] = (
    ("kernel", b"Linux version"),
    ("init", BOOT_MARKER.encode()),
    ("prompt", PROMPT.encode()),
)
# Span name -> (start mark, end mark); "start" is power-on (the engine's clock zero).
SPANS: Tuple[Tuple[str, str, str], ...] = (
    ("firmware", "start", "kernel"),
    ("kernel", "kernel", "init"),
    ("init", "init", "prompt"),
)


@dataclass(frozen=True)
class StageTimeouts:
    """Seconds allowed to reach each mark after the previous one.

    Generous by default because emulators share the machine with compilers; scale them all
    with ``X86LAB_TIMEOUT_SCALE`` (e.g. 2 on a slow CI runner) rather than editing code.
    """

    kernel: float = 60.0
    init: float = 300.0
    prompt: float = 60.0

    def scaled(self, slowdown: float = 1.0) -> StageTimeouts:
        """These timeouts times ``X86LAB_TIMEOUT_SCALE`` and the engine's ``slowdown``
        (``Session.boot_slowdown``: Bochs interprets every instruction)."""
        factor = float(os.environ.get("X86LAB_TIMEOUT_SCALE", "1")) * slowdown
        return StageTimeouts(self.kernel * factor, self.init * factor, self.prompt * factor)

    def for_mark(self, mark: str) -> float:
        return float(getattr(self, mark))


class StageWatcher:
    """Timestamps the marks as console bytes stream past, matching them in order.

    Fed every chunk the engine emits (from the reader thread), so a mark's time is when the
    bytes arrived, not when somebody got round to looking.
    """

    def __init__(self, t0: float, marks: Tuple[Tuple[str, bytes], ...] = MARKS) -> None:
        self._t0 = t0
        self._marks = list(marks)
        self._next = 0
        self._tail = b""
        self.times: Dict[str, float] = {}

    def feed(self, chunk: bytes, now: Optional[float] = None) -> List[str]:
        """Scan one chunk; return the names of marks it completed."""
        reached: List[str] = []
        data = self._tail + chunk
        while self._next < len(self._marks):
            name, pattern = self._marks[self._next]
            at = data.find(pattern)
            if at < 0:
                break
            self.times[name] = (time.monotonic() if now is None else now) - self._t0
            reached.append(name)
            data = data[at + len(pattern):]
            self._next += 1
        self._tail = data[-256:]
        return reached


def span_durations(marks: Dict[str, float]) -> Dict[str, float]:
    """Durations of the spans whose both ends were reached (seconds)."""
    points = dict(marks, start=0.0)
    return {
        span: points[end] - points[begin]
        for span, begin, end in SPANS
        if begin in points and end in points
    }
