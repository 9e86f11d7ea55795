"""A vector that kills an emulator is blamed only when the engine dies on it twice: the
console can lose its last bytes when an emulator aborts, and a vector before the real
culprit was once reported as crashing QEMU (BSR_Gv_Ev, while LOCK BT* killed it)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from conformance import guest_vectors
from conformance.guest_vectors import after_death
from harness.engines.base import SessionClosed


def test_a_line_cut_short_is_no_result_and_the_last_marker_names_the_suspect() -> None:
    text = "@0\n0 S ok\n@1\n1 S ok\n@2\n2 S o"
    got, running = after_death(text, 0)
    assert sorted(got) == [0, 1] and running == 2
    got, running = after_death("@0\n0 S ok\n@1\n1 S ok\n@2\n@3\n", 1)
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
            out += f"@{i}\n{i} S ok\n"
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
