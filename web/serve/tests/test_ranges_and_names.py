"""Range parsing against RFC 9110's own examples; type and cache rules by file name."""

from __future__ import annotations

import pytest

from web.serve.caching import IMMUTABLE, REVALIDATE, cache_control, is_content_hashed
from web.serve.content_types import content_type
from web.serve.ranges import UNSATISFIABLE, ByteRange, parse_range


# RFC 9110 s14.1.2, examples for a representation of length 10000.
@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-499", 0, 499), ("bytes=500-999", 500, 999),
    ("bytes=-500", 9500, 9999), ("bytes=9500-", 9500, 9999),
    ("bytes=0-0", 0, 0), ("bytes=-1", 9999, 9999),
    ("bytes=9000-20000", 9000, 9999),  # last-pos past the end is clamped (s14.1.1)
    ("bytes=-20000", 0, 9999),          # suffix longer than the file: the whole file
])
def test_rfc_examples(header, start, end):
    assert parse_range(header, 10000) == ByteRange(start, end)


@pytest.mark.parametrize("header", ["bytes=10000-", "bytes=20000-30000", "bytes=-0"])
def test_unsatisfiable(header):
    assert parse_range(header, 10000) is UNSATISFIABLE


@pytest.mark.parametrize("header", [None, "", "bytes=0-1,5-6", "items=0-1", "bytes=5-3",
                                    "bytes=-", "bytes=a-b"])
def test_ignored_means_whole_file(header):
    assert parse_range(header, 10000) is None


@pytest.mark.parametrize("name, expected", [
    ("v86.wasm", "application/wasm"), ("libv86.mjs", "text/javascript; charset=utf-8"),
    ("main.js", "text/javascript; charset=utf-8"), ("index.html", "text/html; charset=utf-8"),
    ("linux.img.zst", "application/octet-stream"), ("state.bin.gz", "application/octet-stream"),
    ("no-suffix", "application/octet-stream"),
])
def test_content_types(name, expected):
    assert content_type(name) == expected


@pytest.mark.parametrize("name, hashed", [
    ("app.3f9a1c2b.js", True), ("v86-0a1b2c3d4e5f.wasm", True),
    ("chunk_9c2e7d1f0b3a4c5d.mjs", True),
    ("app.js", False), ("app.3f9a1c2.js", False),          # 7 hex digits: too short
    ("report-20261126.json", False), ("deadbeef.bin", False),  # date / word
])
def test_hashed_names_are_cached_forever(name, hashed):
    assert is_content_hashed(name) == hashed
    assert cache_control(name) == (IMMUTABLE if hashed else REVALIDATE)
