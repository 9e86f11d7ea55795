"""Checking cached files against the size and sha256 their manifest recorded, cheaply.

A cache entry is only as good as its bytes: a truncated bzImage made QEMU exit with an
empty console, a flipped bit hung the boot, and neither message pointed at the cache.
Hashing every file on every use would cost ~50 ms per image, so each folder keeps a stamp
(STAMP_FILE) of what each file looked like when it last hashed correctly: size, mtime,
ctime and inode. A file that still looks the same is trusted; any other is hashed again
(a write changes mtime and ctime, and ctime cannot be set back). ``full`` hashes every
file regardless (``x86lab image build --verify``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Mapping, Optional

STAMP_FILE = ".verified.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def facts(path: Path) -> Dict[str, object]:
    """What a manifest records about a file: its size and sha256."""
    return {"size": path.stat().st_size, "sha256": sha256_file(path)}


def _look(stat: os.stat_result) -> List[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def problems(folder: Path, expected: Mapping[str, Mapping[str, object]],
             full: bool = False) -> List[str]:
    """What is wrong with the files of ``folder`` (names relative to it) against
    ``expected`` {name: {"size", "sha256"}}; empty when all are intact.

    Files found intact by hashing are stamped, so the next call trusts them cheaply.
    """
    stamp = _read_stamp(folder)
    found: List[str] = []
    changed = False
    for name, want in sorted(expected.items()):
        path = folder / name
        try:
            stat = path.stat()
        except OSError:
            found.append(f"{name} is missing")
            continue
        if stat.st_size != want["size"]:
            found.append(f"{name} is {stat.st_size:,} bytes, the manifest says {want['size']:,}")
            continue
        if not full and stamp.get(name) == _look(stat) + [want["sha256"]]:
            continue
        actual = sha256_file(path)
        if actual != want["sha256"]:
            found.append(f"{name} has sha256 {actual[:16]}..., the manifest says "
                         f"{str(want['sha256'])[:16]}...")
            stamp.pop(name, None)
            changed = True
            continue
        stamp[name] = _look(path.stat()) + [want["sha256"]]
        changed = True
    if changed:
        _write_stamp(folder, stamp)
    return found


def own_copy(path: Path) -> None:
    """Make ``path`` a file of its own if it is hard-linked elsewhere (older caches linked
    one bzImage into every image and the kernel folder, so one damaged file broke all)."""
    if path.stat().st_nlink <= 1:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    shutil.copy2(path, partial)
    partial.replace(path)


def _read_stamp(folder: Path) -> Dict[str, list]:
    try:
        loaded = json.loads((folder / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _write_stamp(folder: Path, stamp: Dict[str, list]) -> None:
    """Written atomically; a lost race with another process only costs a re-hash."""
    partial = folder / f"{STAMP_FILE}.{os.getpid()}"
    try:
        partial.write_text(json.dumps(stamp, sort_keys=True))
        partial.replace(folder / STAMP_FILE)
    except OSError:  # a read-only cache still verifies, it just hashes every time
        partial.unlink(missing_ok=True)


def publish_folder(staging: Path, folder: Path, manifest_name: str = "",
                   manifest: Optional[Mapping[str, object]] = None) -> None:
    """Write the manifest into a finished ``staging`` folder and move it to ``folder``
    (replacing an old or damaged entry): the rename comes last, so an interrupted build
    never leaves a folder that looks ready."""
    if manifest_name:
        (staging / manifest_name).write_text(json.dumps(manifest, indent=2, sort_keys=True)
                                             + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(folder)


def damaged_message(what: str, folder: Path, found: List[str],
                    remedy: Optional[str] = None) -> str:
    """One line naming the cache entry, what is wrong with it, and what to do."""
    line = f"cached {what} in {folder} is damaged: {'; '.join(found)}"
    return f"{line}; {remedy}" if remedy else line
