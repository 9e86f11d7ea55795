"""One call from "engine x kernel" to a shell you can run commands in.

``boot("v86", "tiny")`` builds or finds the image (``images.build.ensure_image``), starts
the engine, waits through the boot stages and hands back a ``Guest``; the CLI, the pytest
fixtures and the report all come through here so they boot the same way.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

from harness.console import Console
from harness.engines import BootImage, Metrics, Session, get_engine
from harness.stages import StageTimeouts, span_durations
from x86lab.cache import cache_dir

KERNEL_NAMES = ("tiny", "debian")
DEFAULT_MEMORY_MIB = 256


@dataclass
class Guest:
    """A booted guest: its console, its engine session and where its console log is."""

    engine: str
    kernel: str
    memory_mib: int
    session: Session
    console: Console
    log_path: Path
    image_manifest: dict = field(default_factory=dict)

    def metrics(self) -> Metrics:
        return self.session.metrics()

    def summary(self) -> dict:
        """Stage times and instruction counts as plain data (for --json and the report)."""
        metrics = self.metrics()
        return {
            "engine": self.engine,
            "kernel": self.kernel,
            "memory_mib": self.memory_mib,
            "marks": {k: round(v, 3) for k, v in metrics.marks.items()},
            "spans": {k: round(v, 3) for k, v in span_durations(metrics.marks).items()},
            "instructions": metrics.instructions,
            "instructions_now": metrics.instructions_now,
            "console_log": str(self.log_path),
        }

    def stop(self) -> None:
        self.session.stop()


def console_log_path(engine: str, kernel: str, folder: Optional[Path] = None) -> Path:
    """Where a boot's console log goes: ``folder`` if given, else the harness cache."""
    folder = folder or cache_dir("harness") / "consoles"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{engine}-{kernel}.log"


def find_image(kernel: str) -> BootImage:
    """The built image for ``kernel`` ("tiny" or "debian"), building it if need be."""
    from images.build import ensure_image

    return ensure_image(kernel=kernel)


def start_guest(
    engine: str, image: BootImage, kernel: str = "custom",
    memory_mib: int = DEFAULT_MEMORY_MIB, extra: Sequence[str] = (),
    log_dir: Optional[Path] = None, timeouts: Optional[StageTimeouts] = None,
    wait: bool = True,
) -> Guest:
    """Power on ``image`` and (with ``wait``) wait for its shell; stops it on failure."""
    log_path = console_log_path(engine, kernel, log_dir)
    session = get_engine(engine).start(image, memory_mib=memory_mib, extra=extra,
                                       log_path=log_path)
    guest = Guest(engine, kernel, memory_mib, session, Console(session), log_path,
                  dict(getattr(image, "manifest", {}) or {}))
    if wait:
        try:
            guest.console.wait_for_boot(timeouts)
        except BaseException:
            guest.stop()
            raise
    return guest


@contextlib.contextmanager
def boot(
    engine: str, kernel: str, memory_mib: int = DEFAULT_MEMORY_MIB,
    log_dir: Optional[Path] = None, timeouts: Optional[StageTimeouts] = None,
    wait: bool = True,
) -> Iterator[Guest]:
    """Boot ``kernel`` on ``engine`` for the duration of a ``with`` block."""
    guest = start_guest(engine, find_image(kernel), kernel, memory_mib, log_dir=log_dir,
                        timeouts=timeouts, wait=wait)
    try:
        yield guest
    finally:
        guest.stop()
