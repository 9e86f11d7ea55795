"""Content-hashed file names: the name changes whenever the bytes do, so a host may tell
browsers to cache the file for a year without ever serving a stale emulator or kernel."""

from __future__ import annotations

import shutil
from pathlib import Path

from ground.assets import sha256_file

HASH_CHARS = 16
"""Hex digits of sha256 in a name: enough that two versions never share one."""


def hashed_name(stem: str, suffix: str, sha256: str) -> str:
    """``libv86`` + ``.js`` -> ``libv86.0123abcd4567ef89.js``."""
    return f"{stem}.{sha256[:HASH_CHARS]}{suffix}"


def copy_hashed(source: Path, folder: Path, stem: str, suffix: str) -> dict:
    """Copy ``source`` into ``folder`` under its hashed name; facts for the manifest."""
    if not source.is_file():
        raise FileNotFoundError(source)
    sha256 = sha256_file(source)
    name = hashed_name(stem, suffix, sha256)
    shutil.copyfile(source, folder / name)
    return {"file": name, "sha256": sha256, "size": source.stat().st_size}
