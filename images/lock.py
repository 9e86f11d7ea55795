"""One builder at a time per cache folder, across processes (pytest and the CLI at once).

An advisory ``flock`` on a file in the cache: released by the kernel when the holder
exits, even if it crashes, so a stale lock never needs cleaning up.
"""

from __future__ import annotations

import contextlib
import fcntl
import sys
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` for the ``with`` block, waiting if needed."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"x86lab: waiting for another image build ({lock_path})", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
