"""Cache-Control: forever for content-hashed names, revalidate for everything else.

A name that carries a hash of its content (``app.3f9a1c2b.js``, ``v86-0a1b2c3d4e5f.wasm``)
can never change meaning, so browsers may keep it a year without asking; any other name
must be revalidated (ETag / Last-Modified make that a cheap 304). A segment counts as a
hash when it is 8+ hex digits containing both a digit and a letter: a date such as
``20261126`` or a word such as ``deadbeef`` is not taken for one, which only costs a
revalidation, whereas the opposite mistake would pin stale files in caches.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

_SEGMENT = re.compile(r"[.\-_]")
_HEX = re.compile(r"^[0-9a-fA-F]{8,}$")


def is_content_hashed(name: str) -> bool:
    for segment in _SEGMENT.split(PurePosixPath(name).name):
        if _HEX.match(segment) and re.search(r"\d", segment) and re.search(r"[a-fA-F]", segment):
            return True
    return False


def cache_control(name: str) -> str:
    return IMMUTABLE if is_content_hashed(name) else REVALIDATE
