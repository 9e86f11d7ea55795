"""The page's guest on the network: started from the saved state with `?relay=` naming
our relay, the guest's background udhcpc gets a lease from v86's router and wget fetches
a file from a server on 127.0.0.1 (the relay maps the stand-in address to it); the sha256
the guest prints matches Python's hashlib."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from web.build.chromium import (
    CHROMIUM,
    COMMAND_TIMEOUT_MS,
    chromium_page,
    type_and_wait,
    wait_for_stage,
)
from web.build.local import serving
from web.relay.background import relay_in_thread
from web.relay.guest_check import download_and_hash, redirect_to, wait_for_lease

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]


def test_guest_downloads_through_the_relay(site_url: str, tmp_path: Path) -> None:
    data = random.Random(8).randbytes(100_000)
    (tmp_path / "blob.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    with serving(tmp_path) as files, relay_in_thread([redirect_to(urlsplit(files).port)]) \
            as relay, chromium_page() as page:
        page.goto(f"{site_url}?relay={quote(relay, safe='')}")
        wait_for_stage(page, "prompt")
        started = page.evaluate("() => [window.x86lab.boot, window.x86lab.relay]")
        lease = type_and_wait(page, wait_for_lease(), "inet 192.168.86.",
                              timeout_ms=3 * COMMAND_TIMEOUT_MS)
        out = type_and_wait(page, download_and_hash("blob.bin"), f"{digest}  /tmp/blob.bin",
                            timeout_ms=3 * COMMAND_TIMEOUT_MS)
    assert started == ["state", relay.replace("ws://", "wisp://")]
    assert "inet 192.168.86." in lease
    assert f"{digest}  /tmp/blob.bin" in out
