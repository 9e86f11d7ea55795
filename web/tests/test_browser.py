"""The built site in headless Chromium: it boots to the prompt (from power-on, and from
the saved state), typed commands answer correctly, and a state that does not fit falls back
to a cold boot. Expected values are computed by Python here, not read from the page."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from web.build.chromium import CHROMIUM, chromium_page, type_and_wait, wait_for_stage
from web.build.headers import MANIFEST_NAME
from web.build.local import serving

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]


def _origin(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"


@pytest.mark.parametrize("query, boot, engine, early", [
    ("?boot=cold", "cold", "worker", True), ("", "state", "worker", True),
    ("?engine=main", "state", "main", False),
], ids=["cold-boot", "from-state", "from-state-on-main-thread"])
def test_page_reaches_prompt_and_runs_commands(site_url: str, built_site: Path, query: str,
                                               boot: str, engine: str, early: bool,
                                               tmp_path_factory: pytest.TempPathFactory
                                               ) -> None:
    """``early``: the machine the page's <head> script starts (earlyStart.js), cold or
    from the state, is the one used, only in the worker."""
    requested = []
    with chromium_page() as page:
        page.on("request", lambda request: requested.append(request.url))
        page.goto(site_url + query)
        wait_for_stage(page, "prompt")
        shown = page.locator(".vm-stage").inner_text()
        started_as = page.evaluate("() => [window.x86lab.boot, window.x86lab.engine, "
                                   "window.x86lab.early]")
        out = type_and_wait(page, "echo $((6*7))", f"\n{6 * 7}\r")
        digest = hashlib.md5(b"x86lab\n").hexdigest()
        md5 = type_and_wait(page, "echo x86lab | md5sum", digest)
        shot = tmp_path_factory.mktemp("artifacts") / f"x86lab-{boot}-{engine}.png"
        page.screenshot(path=str(shot))
    assert (shown, started_as) == ("shell ready", [boot, engine, early])
    assert f"\n{6 * 7}\r" in out
    assert digest in md5
    assert Path(shot).stat().st_size > 0
    # Everything came from the site itself (v86 also makes blob:/data: URLs, no host).
    assert {_origin(url) for url in requested} - {"blob:", "data:"} == {_origin(site_url)}
    manifest = json.loads((built_site / MANIFEST_NAME).read_text())
    # (The worker's own URL names the state and libv86 it fetches: not a download of them.)
    paths = [urlparse(url).path for url in requested]
    # A cold boot fetches the kernel once (the <head> script's request, handed to v86).
    kernel_fetches = paths.count(f"/os/{manifest['assets']['bzimage']['file']}")
    assert kernel_fetches == (1 if boot == "cold" else 0)
    # The state is downloaded once (by the worker, or by the page on the main thread),
    # never twice; a cold boot never fetches it.
    state_fetches = paths.count(f"/os/{manifest['state']['file']}")
    assert state_fetches == (1 if boot == "state" else 0)


def test_state_for_another_v86_falls_back_to_cold_boot(built_site: Path,
                                                      tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(built_site, site)
    manifest = json.loads((site / MANIFEST_NAME).read_text())
    manifest["state"]["v86_version"] = "0.0.1-other"
    (site / MANIFEST_NAME).write_text(json.dumps(manifest))
    with serving(site) as url, chromium_page() as page:
        page.goto(url)
        wait_for_stage(page, "kernel")  # the kernel printed "Linux version": a real boot
        started_as = page.evaluate("() => window.x86lab.boot")
    assert started_as == "cold"
