"""The campaign folder as input: every file is checked when the campaign is reopened, so a
damaged one is one clear line naming it (and what to do), never a traceback in a worker;
and one lock keeps a second writer out while a campaign runs.

A file the campaign wrote is always whole (``write_durably``), so a file that fails these
checks was damaged from outside (a disk, a hand edit, a copy cut short). Nothing is
deleted or rewritten here: the user decides what to keep.
"""

from __future__ import annotations

import fcntl
import json
import os
from numbers import Real
from pathlib import Path
from typing import Any, Dict, Optional

LOCK_NAME = "campaign.lock"
PLAN_FIELDS = {"seed": int, "jobs": int, "forms": str, "bytes_share": int,
               "known_sha256": str, "draw_version": int}


class CampaignError(Exception):
    """A campaign directory that does not fit the options (e.g. resuming another seed),
    cannot be used, or holds a damaged file."""


def usable_directory(directory: Path) -> None:
    """Create ``directory`` if needed; a path that is a file (or cannot be created) is a
    set-up error."""
    if directory.exists() and not directory.is_dir():
        raise CampaignError(f"--out {directory} is not a directory (a campaign keeps "
                            f"several files there); choose a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CampaignError(f"--out {directory}: cannot create it ({exc.strerror})") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CampaignError(f"{path}: damaged, not readable as JSON ({exc}); restore it or "
                            f"move it away") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def plan_fields(obj: Any, path: Path) -> Dict[str, Any]:
    """The keyword arguments of ``Plan`` stored in ``campaign.json``, checked."""
    if not isinstance(obj, dict) or set(obj) - set(PLAN_FIELDS) or \
            not {"seed", "jobs", "forms"} <= set(obj):
        raise CampaignError(f"{path}: damaged, expected an object with keys "
                            f"{', '.join(PLAN_FIELDS)}; restore it or start another --out")
    for key, kind in PLAN_FIELDS.items():
        value = obj.get(key, 0 if kind is int else "")
        if (kind is int and not _is_int(value)) or (kind is str and not isinstance(value, str)):
            raise CampaignError(f"{path}: damaged, {key} is {value!r}; restore it or start "
                                f"another --out")
    if obj["jobs"] < 1:
        raise CampaignError(f"{path}: damaged, jobs is {obj['jobs']}")
    return obj


def _counts(value: Any) -> bool:
    """``{name: count}`` with non-negative integer counts."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and _is_int(n) and n >= 0 for k, n in value.items())


def worker_state(obj: Any, path: Path, worker: int, jobs: int) -> Dict[str, Any]:
    """A ``workers/W.json`` record, checked: batch numbering, counts and times."""
    ok = (isinstance(obj, dict) and obj.get("worker") == worker
          and _is_int(obj.get("next_batch")) and obj["next_batch"] >= 0
          and obj["next_batch"] % jobs == worker
          and _is_int(obj.get("cases")) and obj["cases"] >= 0
          and isinstance(obj.get("busy"), Real) and not isinstance(obj.get("busy"), bool)
          and obj["busy"] >= 0
          and isinstance(obj.get("forms"), dict)
          and all(isinstance(k, str) and _counts(v) for k, v in obj["forms"].items())
          and _counts(obj.get("known")))
    if not ok:
        raise CampaignError(f"{path}: damaged worker state; restore it, or delete it to "
                            f"redo that worker's batches from the start")
    return obj


def check_divergences(directory: Path) -> None:
    """Every saved divergence must load: the campaign replays them first."""
    from differential.corpus import CorpusError, load, paths

    for path in paths(directory):
        try:
            load(path)
        except CorpusError as exc:
            raise CampaignError(f"{exc}; restore it or move it out of {directory}") from None


class CampaignLock:
    """An exclusive ``flock`` on ``DIR/campaign.lock`` for as long as a campaign runs, so
    a second ``--resume`` cannot write the same worker files. The kernel drops the lock
    when its holder dies, even by SIGKILL: a stale lock file never blocks."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> CampaignLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise CampaignError(f"{self.path.parent} is in use by another campaign (pid "
                                f"{holder}); wait for it to end or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> CampaignLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
