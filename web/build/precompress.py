"""Precompressed siblings of the site's files: ``NAME.br`` (brotli, quality 11) and
``NAME.gz`` (gzip, level 9) beside ``NAME``, made once at build time so a host sends the
smallest encoding a browser accepts without compressing on every request.

``x86lab web serve`` picks a sibling by ``Accept-Encoding`` and sends it with
``Content-Encoding`` (``web/serve/handler.py``); ``vercel.json`` does the same with
rewrites and headers conditioned on that request header (``headers.py``). The browser
undoes the encoding, so the page and v86 see the very bytes the manifest hashes.

Left alone: files that are already compressed (the zstd state) or read in pieces through
HTTP Range (the lazy disk and its chunks: a range of an encoded body is not a range of
the file), and files a sibling would not make at least ``MIN_SAVING`` smaller. Results
are cached by content (brotli at quality 11 takes seconds per megabyte).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Callable, Dict, List

from ground.assets import sha256_file
from ground.cache import cache_dir

ENCODINGS: Dict[str, str] = {"br": ".br", "gzip": ".gz"}
"""Content-Encoding token -> sibling suffix, in the order a server should prefer them."""
COMPRESSIBLE = (".js", ".mjs", ".wasm", ".html", ".css", ".json", ".txt", ".svg", ".bin",
                ".cpio", ".map")
SKIPPED = ("rootdisk.", "state.", "x86lab-manifest")
"""Name prefixes never precompressed: the lazy disk (Range), the state (zstd already), the
manifest (small, revalidated on every visit, and edited in place by tests and people)."""
MIN_SAVING = 0.05
BROTLI_QUALITY = 11
GZIP_LEVEL = 9


def _brotli(data: bytes) -> bytes:
    import brotli

    return brotli.compress(data, quality=BROTLI_QUALITY)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


COMPRESSORS: Dict[str, Callable[[bytes], bytes]] = {"br": _brotli, "gzip": _gzip}


def wanted(path: Path) -> bool:
    """Whether ``path`` should get precompressed siblings."""
    name = path.name
    return (path.suffix.lower() in COMPRESSIBLE and not name.startswith(SKIPPED)
            and not name.startswith("."))


def _encoded(path: Path, encoding: str) -> Path:
    """The cached encoding of ``path`` (made if missing)."""
    folder = cache_dir("web") / "precompressed"
    folder.mkdir(parents=True, exist_ok=True)
    cached = folder / f"{sha256_file(path)}{ENCODINGS[encoding]}"
    if not cached.exists():
        partial = cached.with_name(f".{cached.name}.partial")
        partial.write_bytes(COMPRESSORS[encoding](path.read_bytes()))
        partial.replace(cached)
    return cached


def precompress_site(root: Path) -> List[dict]:
    """Write the siblings under ``root``; one record per sibling kept (file, encoding,
    size, original size)."""
    made = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and wanted(p)):
        size = path.stat().st_size
        for encoding, suffix in ENCODINGS.items():
            encoded = _encoded(path, encoding)
            if encoded.stat().st_size > size * (1 - MIN_SAVING):
                continue
            sibling = path.with_name(path.name + suffix)
            shutil.copyfile(encoded, sibling)
            made.append({"file": str(sibling.relative_to(root)), "encoding": encoding,
                         "size": sibling.stat().st_size, "original_size": size})
    return made
