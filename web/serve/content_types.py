"""Content-Type by file name, fixed for the types a browser is strict about.

``WebAssembly.instantiateStreaming`` refuses anything but ``application/wasm`` and module
scripts need a JavaScript type; the platform's ``mimetypes`` table varies between hosts,
so the types the site depends on are pinned here and the rest fall back to it.
"""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath

PINNED = {
    ".wasm": "application/wasm",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".bin": "application/octet-stream",
    ".img": "application/octet-stream",
    ".iso": "application/octet-stream",
    ".zst": "application/octet-stream",
    ".gz": "application/octet-stream",
}
"""``.gz``/``.zst`` disk images are fetched as bytes that v86 decompresses itself, so
they are sent as octet-stream and never with a Content-Encoding the browser would undo."""


def content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PINNED:
        return PINNED[suffix]
    guessed, _encoding = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"
