"""v86 as an engine: our Node runner (``runner.js`` here) boots the image headless.

v86 is the engine the project's web pages will run, so its behaviour is the one to pin
down; it also counts guest instructions, which makes boot cost comparable across machines
(wall time is not: the host is shared). The runner reports the count at each boot mark and
on SIGUSR1 as ``X86LAB {json}`` lines on stderr; stdout is the raw serial line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Optional, Sequence

from harness.engines.base import BootImage, EngineError, Metrics, ProcessSession, Session
from harness.stages import MARKS

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "runner.js"
BIOS = Path("/usr/share/seabios/bios.bin")
VGA_BIOS = Path("/usr/share/seabios/vgabios-stdvga.bin")
INITRD_BASE_MIB = 64  # v86 loads the initrd at 64 MiB, so RAM must reach past its end
METRIC_PREFIX = "X86LAB "


def _check_installed() -> None:
    if shutil.which("node") is None:
        raise EngineError("node not found; install Node.js (apt-get install nodejs)")
    if not (HERE / "node_modules" / "v86" / "build" / "v86.wasm").exists():
        raise EngineError(f"v86 is not installed; run: (cd {HERE} && npm ci)")
    if not BIOS.exists():
        raise EngineError(f"{BIOS} missing; install it: apt-get install seabios")


class V86Session(ProcessSession):
    """A ProcessSession that also collects the runner's instruction counts."""

    def __init__(self, argv: Sequence[str], log_path: Optional[Path]) -> None:
        self.instructions: dict = {}
        self.counter: Optional[int] = None
        self._counter_serial = 0
        super().__init__("v86", argv, log_path)

    def on_stderr_line(self, line: str) -> None:
        if not line.startswith(METRIC_PREFIX):
            return
        record = json.loads(line[len(METRIC_PREFIX):])
        if record["event"] == "stage":
            self.instructions[record["name"]] = record["instructions"]
        self.counter = record["instructions"]
        self._counter_serial += 1

    def metrics(self) -> Metrics:
        """Asks the runner for a fresh count (SIGUSR1) and waits briefly for the answer."""
        with self._cond:
            seen = self._counter_serial
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 2.0
            with self._cond:
                while self._counter_serial == seen and time.monotonic() < deadline:
                    self._cond.wait(deadline - time.monotonic())
        with self._cond:
            return Metrics(
                engine=self.engine, marks=dict(self.watcher.times),
                instructions=dict(self.instructions), instructions_now=self.counter,
            )


class V86Engine:
    name = "v86"

    def command(self, image: BootImage, memory_mib: int, extra: Sequence[str] = ()) -> list:
        """``node [extra...] runner.js CONFIG``: ``extra`` are Node options (e.g. a heap size)."""
        config = {
            "bios": str(BIOS),
            "vga_bios": str(VGA_BIOS) if VGA_BIOS.exists() else None,
            "bzimage": str(image.kernel),
            "initrd": str(image.initrd) if image.initrd else None,
            "cmdline": image.cmdline,
            "memory_mib": memory_mib,
            "stages": [[name, pattern.decode("latin-1")] for name, pattern in MARKS],
        }
        return ["node", *extra, str(RUNNER), json.dumps(config)]

    def start(
        self, image: BootImage, memory_mib: int = 256, extra: Sequence[str] = (),
        log_path: Optional[Path] = None,
    ) -> Session:
        _check_installed()
        if image.initrd:
            need = INITRD_BASE_MIB + Path(image.initrd).stat().st_size / 2**20
            if memory_mib <= need:
                raise EngineError(
                    f"v86 needs more than {need:.0f} MiB of RAM for this initrd (it is loaded"
                    f" at {INITRD_BASE_MIB} MiB); got {memory_mib} MiB, try --memory 256"
                )
        return V86Session(self.command(image, memory_mib, extra), log_path)
