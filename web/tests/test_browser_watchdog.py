"""The watchdog on a restored state: a state that v86 restores without complaint but whose
guest never shows a prompt (here: the kernel's code zeroed in the snapshot's memory, so
the guest crashes on its first instruction) ends in a cold boot with the reason shown,
after the bound the page sets (``?watchdog=MS``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from web.build.chromium import CHROMIUM, chromium_page, wait_for_stage
from web.build.hashing import sha256_file
from web.build.headers import MANIFEST_NAME
from web.build.local import serving
from web.build.state_contents import PAGE, parse_state

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]
KERNEL_TEXT = range((16 << 20) // PAGE, (20 << 20) // PAGE)
"""Pages zeroed: the i386 kernel is loaded at LOAD_PHYSICAL_ADDR, 16 MiB."""


def _crash_the_guest(raw: bytes) -> bytes:
    """``raw`` (an unpacked v86 state) with the kernel's code zeroed."""
    state = parse_state(raw)
    zeroed = 0
    for number, offset in state.pages():
        if number in KERNEL_TEXT:
            state.raw[offset:offset + PAGE] = bytes(PAGE)
            zeroed += 1
    assert zeroed > 256  # the kernel's code really was there, and is gone
    return bytes(state.raw)


def test_a_state_without_a_prompt_falls_back_to_a_cold_boot(built_site: Path,
                                                            tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(built_site, site, copy_function=os.link)
    manifest = json.loads((site / MANIFEST_NAME).read_text())
    state = site / "os" / manifest["state"]["file"]
    raw = _crash_the_guest(subprocess.run(["zstd", "-dc", str(state)], check=True,
                                          capture_output=True).stdout)
    state.unlink()  # a hard link to the session's site: replace, never write through
    subprocess.run(["zstd", "-q", "-1", "-o", str(state)], input=bytes(raw), check=True)
    manifest["state"].update(size=state.stat().st_size, sha256=sha256_file(state))
    (site / MANIFEST_NAME).unlink()
    (site / MANIFEST_NAME).write_text(json.dumps(manifest))
    with serving(site) as url, chromium_page() as page:
        page.goto(url + "?watchdog=3000")
        wait_for_stage(page, "restored")  # v86 accepted the state...
        wait_for_stage(page, "kernel")  # ...and the page then booted from power-on
        boot, fallback = page.evaluate("() => [window.x86lab.boot, window.x86lab.fallback]")
        notice = page.locator(".vm-notice").inner_text()
    assert boot == "cold"
    assert fallback == "restored, but no shell prompt within 3 s"
    assert fallback in notice and "booting from power-on" in notice
