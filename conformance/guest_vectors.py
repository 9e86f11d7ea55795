"""The vectors suite inside a booted guest (v86, QEMU), robust to the emulator dying.

The stepper writes its results to a file in the guest (for the restart loop) and, framed
with a CRC-32, to the serial console; before each vector it writes "@N" to the console and
waits for it to drain. Only the stepper writes there while it runs, and the host takes a
result only from a whole framed line: a console can interleave the kernel's messages (or,
before, ``tee``'s 2 KiB chunks and the markers) into the middle of a line, and the tail
"3 S ..." of "1723 S ..." was once read as vector 3's result. If the emulator exits, the
console log holds every result that got out and the marker of the vector it was running:
that vector is reported as having killed the engine, the guest is rebooted, and the run
resumes after the last result.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

from conformance.sentinels import checked_stops
from conformance.stepper import inexpressible_reason
from differential.runners.native_runner import (
    MAX_RESTARTS,
    StepResult,
    build,
    encode,
    parse_output,
)
from ground.case import Case
from vectors.files import Entry

# QEMU 7.2 aborts on every LOCK BT* with a register (known/qemu.toml); each killing vector
# costs two deaths (blamed only when the engine dies on it twice: after_death).
MAX_ENGINE_DEATHS = 100
# "<index> <S|T|X|N|C> ... ~<crc32>": the stepper's framed console line (stepper.c).
FRAMED_LINE = re.compile(r"^((\d+) [STXNC] [^\r\n]*?) ~([0-9a-f]{8})\r?$", re.MULTILINE)
MARKER_LINE = re.compile(r"^@(\d+)\r?$", re.MULTILINE)
# $1 vectors, $2 output file, $3 indices not to run ("-": none), $4 first index. The
# stepper writes the console lines itself; a restarted one reports the record its
# predecessor died on (its 4th argument), so no second writer shares the console.
GUEST_LOOP = """#!/bin/sh
# Run the stepper over $1 from record $4, restarting after any record it died on; results
# to $2 (and, framed, to the console); the records listed in $3 are not run.
echo 0 > /proc/sys/vm/mmap_min_addr 2>/dev/null
: > "$2"; next=$4; died=-; tries=0
while [ $tries -lt {restarts} ]; do
  "$(dirname "$0")/stepper" "$1" $next "$3" $died >> "$2" && break
  status=$?
  last=$(tail -n 1 "$2" | cut -d' ' -f1); [ -n "$last" ] || last=$((next - 1))
  died="$((last + 1)):$((status - 128))"; next=$((last + 2)); tries=$((tries + 1))
done
""".replace("{restarts}", str(MAX_RESTARTS))


class EngineGaveUp(RuntimeError):
    """The emulator died more often than ``MAX_ENGINE_DEATHS`` on one run of vectors."""


def guest_files(entries: Sequence[Entry]) -> Dict[str, bytes]:
    """What the vectors suite puts into a guest image: the stepper, its loop, its input
    (only the expressible cases, in order, with the sentinels this CPU allows, for an
    engine that ignores TF)."""
    runnable = [entry for entry in entries if not inexpressible_reason(entry.case)]
    cases = [entry.case for entry in runnable]
    stops = checked_stops(cases, [entry.expected for entry in runnable])
    return {"stepper": build().read_bytes(), "step.sh": GUEST_LOOP.encode(),
            "vectors.bin": encode(cases, stops)}


def results_in(text: str) -> Dict[int, str]:
    """The stepper's result lines in console ``text`` (frame removed), by index: only lines
    whose CRC-32 matches, so a line cut, spliced or merged on the console is no result."""
    found: Dict[int, str] = {}
    for match in FRAMED_LINE.finditer(text):
        line = match.group(1)
        if zlib.crc32(line.encode("latin-1")) == int(match.group(3), 16):
            found[int(match.group(2))] = line
    return found


def after_death(text: str, start: int) -> Tuple[Dict[int, str], int]:
    """(the results at or after ``start`` that reached the console log, the vector that
    was running) after the engine died. A line the death cut short is no result. The
    console can lose its last bytes when an emulator aborts (QEMU's "tcg fatal error"),
    so the vector named here is only a suspect: the caller reboots, runs on from the
    first missing result, and blames a vector only when the engine dies on it twice
    (once, a vector before the real culprit was blamed and reported as crashing)."""
    text = text[:text.rfind("\n") + 1]
    got = {i: line for i, line in results_in(text).items() if i >= start}
    done = max(got, default=start - 1)
    markers = [int(m) for m in MARKER_LINE.findall(text)]
    return got, max([done + 1] + [m for m in markers if m > done])


def _gist(message: str) -> str:
    """The first line of an engine's exit message and its error line (``RangeError: ...``),
    without the stack frames between."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line and not line.startswith("at ")]
    return "; ".join(lines[:1] + errors[:1])


def run_vectors_in_guest(guest_now: Callable[[], object], reboot: Callable[[], object],
                         cases: Sequence[Case], note: Callable[[str], None],
                         timeout: float = 1800.0) -> List[StepResult]:
    """Every case in the guest ``guest_now()`` (its image made from ``guest_files``);
    ``reboot()`` replaces a guest whose emulator died. ``note`` hears about each death."""
    from conformance.guest_session import GUEST_DIR
    from harness.engines import SessionClosed

    runnable = [case for case in cases if not inexpressible_reason(case)]
    lines: Dict[int, str] = {}
    skip: List[int] = []
    start, deaths = 0, []
    suspect = None
    while True:
        guest = guest_now()
        command = (f"sh {GUEST_DIR}/step.sh {GUEST_DIR}/vectors.bin /tmp/step.out "
                   f"{','.join(map(str, skip)) or '-'} {start}")
        try:
            lines.update(results_in(guest.console.run_check(command, timeout=timeout)))
            break
        except SessionClosed as exc:
            log = Path(guest.log_path)
            text = log.read_bytes().decode("latin-1") if log.exists() else ""
            got, running = after_death(text, start)
            lines.update(got)
            deaths.append(running)
            if running == suspect:  # it died on this vector twice: it kills the engine
                lines[running] = f"{running} C killed-the-engine: {_gist(str(exc))}"
                skip.append(running)
                suspect = None
                note(f"the engine died on vector #{running} again ({_gist(str(exc))}): "
                     "it kills the engine; rebooting")
            else:
                suspect = running
                note(f"the engine died at vector #{running} ({_gist(str(exc))}); rebooting "
                     "to confirm it")
            start = max(got, default=start - 1) + 1
            if len(deaths) >= MAX_ENGINE_DEATHS:
                break
            reboot()
    text = "\n".join(lines[i] for i in sorted(lines))
    return _merge(cases, parse_output(runnable, text))


def _merge(cases: Sequence[Case], ran: List[StepResult]) -> List[StepResult]:
    results = iter(ran)
    return [StepResult("inexpressible", reason=reason) if reason else next(results)
            for reason in (inexpressible_reason(case) for case in cases)]
