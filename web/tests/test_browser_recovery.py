"""A saved state that cannot be used never leaves a dead page: missing, truncated, or
rejected by v86 while restoring, the page boots from power-on and says why. Each case runs
on a copy of the built site (hard links, so only the damaged files take space)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from web.build.chromium import CHROMIUM, chromium_page, wait_for_stage
from web.build.hashing import sha256_file
from web.build.headers import MANIFEST_NAME
from web.build.local import serving

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]


def _replace(path: Path, data: bytes) -> None:
    """New contents for a hard-linked file without touching the session's original."""
    path.unlink()
    path.write_bytes(data)


def _missing(state: Path, manifest: dict) -> None:
    state.unlink()


def _truncated(state: Path, manifest: dict) -> None:
    _replace(state, state.read_bytes()[: manifest["state"]["size"] // 2])


def _rejected_by_v86(state: Path, manifest: dict) -> None:
    # Right size and sha256 in the manifest, so only v86's own restore can refuse it.
    _replace(state, random.Random(4).randbytes(manifest["state"]["size"]))
    manifest["state"]["sha256"] = sha256_file(state)


@pytest.mark.parametrize("damage, reason", [
    (_missing, "HTTP 404"), (_truncated, "truncated"),
    (_rejected_by_v86, "v86 could not restore it"),
], ids=["missing", "truncated", "rejected-by-v86"])
def test_unusable_state_falls_back_to_a_cold_boot_and_says_so(built_site: Path,
                                                              tmp_path: Path, damage,
                                                              reason: str) -> None:
    site = tmp_path / "site"
    shutil.copytree(built_site, site, copy_function=os.link)
    manifest = json.loads((site / MANIFEST_NAME).read_text())
    damage(site / "os" / manifest["state"]["file"], manifest)
    _replace(site / MANIFEST_NAME, json.dumps(manifest).encode())
    with serving(site) as url, chromium_page() as page:
        page.goto(url)
        wait_for_stage(page, "kernel")  # the kernel printed "Linux version": a real boot
        boot, fallback = page.evaluate("() => [window.x86lab.boot, window.x86lab.fallback]")
        notice = page.locator(".vm-notice").inner_text()
    assert boot == "cold"
    assert reason in fallback
    assert "booting from power-on" in notice and reason in notice
