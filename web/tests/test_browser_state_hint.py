"""The saved state's request in headless Chromium: the build names the state in the page
(``frontend.with_state_hint``), so its request leaves while the page is parsed, before the
manifest has answered; when the manifest names another state than the hint, the page drops
the hinted download and restores the manifest's."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import List
from urllib.parse import urlparse

import pytest

from web.build.chromium import CHROMIUM, chromium_page, wait_for_stage
from web.build.headers import MANIFEST_NAME
from web.build.local import serving

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]
HINT_WAIT_S = 60
"""Ample for a request made as the page is parsed (it leaves 50-90 ms after navigation)."""


def test_the_state_is_requested_before_the_manifest_answers(built_site: Path,
                                                            site_url: str) -> None:
    manifest = json.loads((built_site / MANIFEST_NAME).read_text())
    state_path = f"/os/{manifest['state']['file']}"
    held: List[object] = []
    state_requests: List[str] = []
    with chromium_page() as page:
        # The manifest's answer is held back until the state has been requested: a state
        # request that waits for the manifest never comes.
        page.route("**/" + MANIFEST_NAME, lambda route: held.append(route))
        page.on("request", lambda r: state_requests.append(r.url)
                if urlparse(r.url).path == state_path else None)
        page.goto(site_url, wait_until="commit")
        deadline = time.monotonic() + HINT_WAIT_S
        while not state_requests and time.monotonic() < deadline:
            page.wait_for_timeout(20)  # lets Playwright deliver the page's events
        assert state_requests and len(held) == 1
        held[0].continue_()
        wait_for_stage(page, "prompt")
        boot, early = page.evaluate("() => [window.x86lab.boot, window.x86lab.early]")
    assert (boot, early) == ("state", True)


def test_a_manifest_naming_another_state_than_the_hint_wins(built_site: Path,
                                                             tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(built_site, site, copy_function=os.link)
    manifest = json.loads((site / MANIFEST_NAME).read_text())
    hinted = manifest["state"]["file"]
    other = "state.0123456789abcdef.bin.zst"  # the same bytes under another name
    os.link(site / "os" / hinted, site / "os" / other)
    manifest["state"]["file"] = other
    (site / MANIFEST_NAME).unlink()  # a hard link to the session's manifest
    (site / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert hinted in (site / "index.html").read_text()  # the page still names the old one
    requested: List[str] = []
    with serving(site) as url, chromium_page() as page:
        page.on("request", lambda request: requested.append(urlparse(request.url).path))
        page.goto(url)
        wait_for_stage(page, "prompt")
        boot, early = page.evaluate("() => [window.x86lab.boot, window.x86lab.early]")
    assert (boot, early) == ("state", True)
    assert requested.count(f"/os/{other}") == 1
