"""Cache keys: a short sha256 over everything an output is made from.

A key changes when any input changes (a package version, the config fragment, /init, the
builder's own source), so a stale output is never reused and an unchanged one always is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

KEY_LENGTH = 16
"""Hex digits of the key in folder names: 64 bits is plenty for a local cache."""


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over the names and bytes of some files (e.g. the builder's source)."""
    hasher = hashlib.sha256()
    for path in paths:
        data = path.read_bytes()
        hasher.update(f"{path.name}:{len(data)}:".encode() + data)
    return hasher.hexdigest()


def key_of(inputs: dict) -> str:
    """The key of a JSON-able description of the inputs (order-independent for dicts)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]
