"""``x86lab web measure --bytes`` in headless Chromium: each load's file list is what the
server sent (the state as stored, the kernel as its brotli sibling where it has one), and
the totals are the files' sums."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from web.build.chromium import CHROMIUM
from web.build.headers import MANIFEST_NAME
from web.build.measure_bytes import measure_bytes, print_bytes

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]


def test_each_load_lists_what_the_server_sent(built_site: Path) -> None:
    manifest = json.loads((built_site / MANIFEST_NAME).read_text())
    figures = measure_bytes(built_site)
    cold, state = figures["loads"]["cold worker"], figures["loads"]["state worker"]
    for load in (cold, state):
        assert load["bytes"] == sum(file["bytes"] for file in load["files"])
        assert all(file["name"].startswith("/") for file in load["files"])
    kernel = f"/os/{manifest['assets']['bzimage']['file']}"
    sent = [file for file in cold["files"] if file["name"] == kernel]
    stored = built_site / "os" / manifest["assets"]["bzimage"]["file"]
    sibling = stored.with_name(stored.name + ".br")  # only where brotli saves 5 %
    expected = ({"bytes": sibling.stat().st_size, "encoding": "br"} if sibling.exists()
                else {"bytes": stored.stat().st_size, "encoding": ""})
    assert sent == [{"name": kernel, **expected}]
    saved = f"/os/{manifest['state']['file']}"
    assert [file for file in state["files"] if file["name"] == saved] == [
        {"name": saved, "bytes": manifest["state"]["size"], "encoding": ""}]
    assert not [file for file in state["files"] if file["name"] == kernel]
    assert figures["state"]["state"]["bytes"] == manifest["state"]["size"]
    out = io.StringIO()
    print_bytes(figures, out=out)
    assert f"state worker: {state['bytes']:,} bytes" in out.getvalue()
    assert "initramfs file /bin/busybox" in out.getvalue()
