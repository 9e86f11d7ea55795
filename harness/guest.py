"""One call from "engine x kernel" to a shell you can run commands in.

``boot("v86", "tiny")`` builds or finds the image (``images.build.ensure_image``), starts
the engine, waits through the boot stages and hands back a ``Guest``; the CLI, the pytest
fixtures and the report all come through here so they boot the same way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

from ground.cache import cache_dir
from harness.console import Console
from harness.engines import BootImage, Metrics, Session, get_engine
from harness.stages import StageTimeouts, span_durations

KERNEL_NAMES = ("tiny", "debian")
DEFAULT_MEMORY_MIB = 256
KEPT_LOGS = 200
"""Console logs kept in the harness cache (a boot's log is some 10-100 KB)."""


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
            "engine_details": metrics.details,
            "console_log": str(self.log_path),
            **({"profile": profile} if (profile := self.profile()) else {}),
        }

    def profile(self) -> Optional[dict]:
        """Where the boot's time went (``harness.boot_profile``), for engines whose runner
        records it (v86); None for the others."""
        from harness.boot_profile import analyse

        records = getattr(self.session, "records", ())
        record = next((r for r in records if r.get("event") == "profile"), None)
        return analyse(record) if record else None

    def stop(self) -> None:
        self.session.stop()


def console_log_path(engine: str, kernel: str, folder: Optional[Path] = None) -> Path:
    """Where a boot's console log goes.

    In a folder the caller names (a report's), one ``ENGINE-KERNEL.log`` per combination.
    Otherwise a new file per boot in the harness cache, so two boots at once never write
    the same log and a failed boot's log is not overwritten by the next; the newest
    KEPT_LOGS are kept.
    """
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{engine}-{kernel}.log"
    folder = cache_dir("harness") / "consoles"
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    while True:
        path = folder / f"{engine}-{kernel}-{stamp}-{os.getpid()}-{secrets.token_hex(3)}.log"
        try:
            path.open("xb").close()  # claimed: nobody else can pick this name now
            break
        except FileExistsError:
            continue
    _prune(folder, keep=KEPT_LOGS)
    return path


def _prune(folder: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` logs (another boot may remove them first)."""
    logs = sorted(folder.glob("*.log"), key=_mtime, reverse=True)
    for old in logs[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def find_image(kernel: str) -> BootImage:
    """The built image for ``kernel`` ("tiny" or "debian"), building it if need be."""
    from images.build import ensure_image

    return ensure_image(kernel=kernel)


def start_guest(
    engine: str, image: BootImage, kernel: str = "custom",
    memory_mib: int = DEFAULT_MEMORY_MIB, extra: Sequence[str] = (),
    log_dir: Optional[Path] = None, timeouts: Optional[StageTimeouts] = None,
    wait: bool = True, log_path: Optional[Path] = None,
) -> Guest:
    """Power on ``image`` and (with ``wait``) wait for its shell; stops it on failure.

    The console log goes to ``log_path`` if given (a caller that must name it even when
    the boot fails), else to ``console_log_path(engine, kernel, log_dir)``.
    """
    log_path = log_path or console_log_path(engine, kernel, log_dir)
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
