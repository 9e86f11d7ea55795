"""A vector that kills an emulator is blamed only when the engine dies on it twice: the
console can lose its last bytes when an emulator aborts, and a vector before the real
culprit was once reported as crashing QEMU (BSR_Gv_Ev, while LOCK BT* killed it)."""

from __future__ import annotations

import os
import pty
import subprocess
import zlib
from pathlib import Path
from typing import List

import pytest

from conformance import guest_vectors
from conformance.guest_vectors import after_death, results_in
from differential.runners.native_runner import StepperError, build, encode
from differential.tests.handmade import make_case
from harness.engines.base import SessionClosed


def framed(line: str) -> str:
    """A result line as the stepper frames it on a console (stepper.c: CRC-32 of the line)."""
    return f"{line} ~{zlib.crc32(line.encode()):08x}"


def test_a_line_cut_short_is_no_result_and_the_last_marker_names_the_suspect() -> None:
    text = f"@0\n{framed('0 S ok')}\n@1\n{framed('1 S ok')}\n@2\n{framed('2 S ok')[:-3]}"
    got, running = after_death(text, 0)
    assert sorted(got) == [0, 1] and running == 2
    got, running = after_death(f"@0\n{framed('0 S ok')}\n@1\n{framed('1 S ok')}\n@2\n@3\n", 1)
    assert sorted(got) == [1] and running == 3


class _Guest:
    """Vector 3 kills the engine. The first death loses its last bytes (vector 2's result
    and the @3 marker), so vector 2 looks like the one that was running."""

    def __init__(self, log: Path, runs: List[str]) -> None:
        self.log_path, self.runs, self.console = log, runs, self

    def run_check(self, command: str, timeout: float) -> str:
        skip_field, start = command.split()[-2:]
        skip = [] if skip_field == "-" else [int(n) for n in skip_field.split(",")]
        self.runs.append(command)
        out = ""
        for i in range(int(start), 5):
            if i in skip:
                continue
            if i == 3:
                lost = len(self.runs) == 1
                self.log_path.write_text(out if lost else out + "@3\n")
                raise SessionClosed("qemu exited; its stderr ends: tcg fatal error")
            out += f"@{i}\n{framed(f'{i} S ok')}\n"
            if i == 2 and len(self.runs) == 1:
                out = out[:out.rfind("2 S")]  # its result line never reached the log
        return out


def test_the_engine_must_die_twice_on_a_vector_before_it_is_blamed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guest_vectors, "inexpressible_reason", lambda case: "")
    monkeypatch.setattr(guest_vectors, "parse_output", lambda cases, text: text.splitlines())
    monkeypatch.setattr(guest_vectors, "_merge", lambda cases, ran: ran)
    runs: List[str] = []
    guest = _Guest(tmp_path / "console.log", runs)
    notes: List[str] = []
    lines = guest_vectors.run_vectors_in_guest(lambda: guest, lambda: guest, list(range(5)),
                                               notes.append)
    assert lines[:3] == ["0 S ok", "1 S ok", "2 S ok"]  # vector 2 ran, it was not blamed
    assert lines[3].startswith("3 C killed-the-engine") and lines[4] == "4 S ok"
    assert len(runs) == 4 and "again" in notes[-1]


def test_a_line_spliced_on_the_console_is_nobody_s_result() -> None:
    """Vector 1723's line, split by a marker written between two chunks of it (as tee's
    2 KiB tty writes and the stepper's "@N" once were), left "3 S ..." at the start of a
    line: it was taken for vector 3's result (QEMU's AAA #3 got DEC_Eb #3's registers).
    A kernel message in the middle of a line must not create a result either."""
    whole = framed("1723 S 1 0 58 ff f4 1001 1002e8 52980000 101 98 7ffffec2 246")
    spliced = whole[:3] + "@1724\n" + whole[3:] + "\n"
    assert results_in(spliced) == {}
    kernel = whole[:20] + "random: crng init done\n" + whole[20:] + "\n"
    assert results_in(kernel) == {}
    assert results_in(whole + "\r\n") == {1723: whole.rsplit(" ~", 1)[0]}
    assert results_in(whole.replace("58", "59") + "\n") == {}  # one byte damaged


def test_the_stepper_frames_its_lines_on_a_terminal_only() -> None:
    """The real stepper, with a pseudo-terminal as stderr (as on a guest's serial console):
    each result line reaches the terminal framed with the zlib CRC-32 of the line, after
    its "@N" marker, and the plain line goes to stdout; a restarted stepper reports the
    record its predecessor died on first."""
    try:
        binary = build()
    except StepperError as exc:
        pytest.skip(f"no i386 stepper on this host: {exc}")
    cases = [make_case(bytes.fromhex("01c8"), eax=1, ecx=2), make_case(b"\x90")]
    controller, terminal = pty.openpty()
    with open(os.devnull, "rb") as nothing:
        vectors = Path(os.environ.get("TMPDIR", "/tmp")) / f"x86lab-frame-{os.getpid()}.bin"
        vectors.write_bytes(encode(cases))
        try:
            done = subprocess.run([str(binary), str(vectors), "1", "-", "0:11"], stdin=nothing,
                                  stdout=subprocess.PIPE, stderr=terminal, timeout=60)
        finally:
            vectors.unlink()
    os.close(terminal)
    console = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        console += chunk
    os.close(controller)
    plain = done.stdout.decode().splitlines()
    assert done.returncode == 0 and plain[0] == "0 C signal-11" and plain[1].startswith("1 S ")
    text = console.decode("latin-1")
    assert results_in(text) == {0: plain[0], 1: plain[1]}
    assert text.index("@1") < text.index(plain[1])
