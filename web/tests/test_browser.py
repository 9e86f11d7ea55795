"""The built site in headless Chromium: it boots to the prompt and typed commands answer
correctly. Expected values are computed by Python here, not read from the page."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlparse

import pytest

from web.tests.browser import CHROMIUM, chromium_page, type_and_wait, wait_for_stage

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]


def _origin(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"


def test_page_boots_to_prompt_and_runs_commands(site_url: str,
                                                tmp_path_factory: pytest.TempPathFactory
                                                ) -> None:
    hosts = set()
    with chromium_page() as page:
        page.on("request", lambda request: hosts.add(_origin(request.url)))
        page.goto(site_url)
        wait_for_stage(page, "prompt")
        shown = page.locator(".vm-stage").inner_text()
        out = type_and_wait(page, "echo $((6*7))", f"\n{6 * 7}\r")
        digest = hashlib.md5(b"x86lab\n").hexdigest()
        md5 = type_and_wait(page, "echo x86lab | md5sum", digest)
        shot = tmp_path_factory.mktemp("artifacts") / "x86lab-prompt.png"
        page.screenshot(path=str(shot))
    assert shown == "shell ready"
    assert f"\n{6 * 7}\r" in out
    assert digest in md5
    assert Path(shot).stat().st_size > 0
    # Everything came from the site itself (v86 also makes blob:/data: URLs, no host).
    assert hosts - {"blob:", "data:"} == {_origin(site_url)}
