"""The saved state's download in headless Chromium: the v86 worker is told the state in its
URL (from the build's hint in the page) and requests it as its script starts, not after
the manifest's answer, and not through the page's main thread; when the manifest names
another state than the page's hint, the worker fetches the manifest's and restores it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import List
from urllib.parse import urlparse

import pytest

from web.build.chromium import BOOT_TIMEOUT_MS, CHROMIUM, chromium_page, wait_for_stage
from web.build.headers import MANIFEST_NAME
from web.build.local import serving

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]

PAGE_RESOURCES_JS = """() => performance.getEntriesByType("resource").map((e) =>
    new URL(e.name).pathname)"""
"""What the page itself fetched (a dedicated worker's fetches are not in its timeline)."""


def test_worker_requests_the_state_before_the_manifest_answers(built_site: Path,
                                                               site_url: str) -> None:
    manifest = json.loads((built_site / MANIFEST_NAME).read_text())
    state_path = f"/os/{manifest['state']['file']}"
    held: List[object] = []
    with chromium_page() as page:
        # The manifest's answer is held back until the state has been requested: a state
        # request that waits for the manifest (the page's old way) never comes.
        page.route("**/" + MANIFEST_NAME, lambda route: held.append(route))
        page.goto(site_url, wait_until="commit")
        page.wait_for_event("request", lambda r: urlparse(r.url).path == state_path,
                            timeout=BOOT_TIMEOUT_MS)
        assert len(held) == 1
        held[0].continue_()
        wait_for_stage(page, "prompt")
        boot, early = page.evaluate("() => [window.x86lab.boot, window.x86lab.early]")
        page_fetched = page.evaluate(PAGE_RESOURCES_JS)
    assert (boot, early) == ("state", True)
    assert state_path not in page_fetched  # the worker's download, not the page's


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
