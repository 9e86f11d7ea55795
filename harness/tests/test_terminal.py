"""The console passthrough of ``x86lab boot``: bytes both ways, Ctrl-] detaches."""

from __future__ import annotations

import os
import threading
import time

from harness.engines.local import LocalShellEngine
from harness.terminal import ESCAPE, attach


def test_typed_bytes_reach_the_shell_and_ctrl_bracket_detaches() -> None:
    session = LocalShellEngine().start(None)
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    seen = bytearray()
    reader = threading.Thread(target=lambda: _drain(stdout_r, seen), daemon=True)
    reader.start()
    try:
        os.write(stdin_w, b"echo $((40 + 2))\n")
        threading.Thread(target=_detach_after, args=(seen, b"42\r\n", stdin_w)).start()
        assert attach(session, stdin_r, stdout_w) == "detached (Ctrl-])"
    finally:
        session.stop()
        os.close(stdout_w)
        reader.join(5)
        for fd in (stdin_r, stdin_w, stdout_r):
            os.close(fd)
    assert b"42\r\n" in seen


def _detach_after(seen: bytearray, expected: bytes, stdin_w: int) -> None:
    """Type Ctrl-] once the shell's answer has come back (or after 10 s regardless)."""
    deadline = time.monotonic() + 10
    while expected not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    os.write(stdin_w, ESCAPE)


def _drain(fd: int, into: bytearray) -> None:
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return
        into += chunk
