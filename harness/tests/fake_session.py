"""A scripted Session for testing the console driver's boot logic without any process."""

from __future__ import annotations

import re
import time
from typing import List

from harness.engines.base import Metrics, Session, SessionClosed


class ScriptedSession(Session):
    """Plays back console chunks one per read; then silence, or EOF if ``ends``.

    Commands written to it succeed with no output, so a boot can get past the prompt.
    """

    engine = "scripted"

    def __init__(self, chunks: List[bytes], ends: bool = False) -> None:
        self.chunks = list(chunks)
        self.ends = ends
        self.written = bytearray()

    def read(self, timeout: float) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.ends:
            raise SessionClosed("scripted engine exited with status 1")
        time.sleep(min(timeout, 0.01))
        return b""

    def write(self, data: bytes) -> None:
        """Answer every wrapped command as a shell would: markers around no output, 0."""
        self.written += data
        for token in re.findall(rb"__X86LAB_BEGIN ([0-9a-f]+)", data):
            self.chunks.append(b"__X86LAB_BEGIN_%s\r\n\r\n__X86LAB_END_%s_ran_0\r\n"
                               % (token, token))

    def stop(self) -> None:
        self.chunks.clear()

    def metrics(self) -> Metrics:
        return Metrics(engine=self.engine)
