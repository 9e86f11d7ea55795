"""The watchdog on a restored state: a state that v86 restores without complaint but whose
guest never shows a prompt (here: the kernel's code zeroed in the snapshot's memory, so
the guest crashes on its first instruction) ends in a cold boot with the reason shown,
after the bound the page sets (``?watchdog=MS``)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
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
STATE_MAGIC = 0x86768676
"""v86's save_state header: int32 magic, version, total size, JSON length; the JSON at 16,
then the buffers (the JSON's buffer_infos: offset, length) from the next 4-byte boundary.
The CPU's state is the JSON's list ``state``: item 77 is guest RAM packed (only pages not
all zero, in address order), item 78 the bitmap of which 4 KiB pages those are."""
PACKED_MEMORY, PAGE_BITMAP = 77, 78
KERNEL_TEXT = range((16 << 20) >> 12, (20 << 20) >> 12)
"""Pages zeroed: the i386 kernel is loaded at LOAD_PHYSICAL_ADDR, 16 MiB."""


def _crash_the_guest(raw: bytearray) -> None:
    magic, _version, total, json_length = struct.unpack_from("<IiiI", raw)
    assert magic == STATE_MAGIC and total == len(raw)
    document = json.loads(raw[16:16 + json_length])
    base = (16 + json_length + 3) & ~3

    def buffer(item: int) -> int:
        """Where the state list's ``item`` (a buffer reference) starts in ``raw``."""
        info = document["buffer_infos"][document["state"][item]["buffer_id"]]
        return base + info["offset"]

    bitmap, packed = buffer(PAGE_BITMAP), buffer(PACKED_MEMORY)
    present = [page for page in range(max(KERNEL_TEXT) + 1)
               if raw[bitmap + page // 8] >> (page % 8) & 1]
    zeroed = 0
    for slot, page in enumerate(present):
        if page in KERNEL_TEXT:
            raw[packed + slot * 4096:packed + (slot + 1) * 4096] = bytes(4096)
            zeroed += 1
    assert zeroed > 256  # the kernel's code really was there, and is gone


def test_a_state_without_a_prompt_falls_back_to_a_cold_boot(built_site: Path,
                                                            tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(built_site, site, copy_function=os.link)
    manifest = json.loads((site / MANIFEST_NAME).read_text())
    state = site / "os" / manifest["state"]["file"]
    raw = bytearray(subprocess.run(["zstd", "-dc", str(state)], check=True,
                                   capture_output=True).stdout)
    _crash_the_guest(raw)
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
