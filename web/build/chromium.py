"""Headless Debian Chromium through Playwright (which cannot download its own browsers
here), and waits on the page's ``window.x86lab`` published by ``<LinuxVM />``: shared by
the browser tests and ``x86lab web measure``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

CHROMIUM = Path(os.environ.get("X86LAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")
TIMEOUT_SCALE = float(os.environ.get("X86LAB_TIMEOUT_SCALE", "1"))
BOOT_TIMEOUT_MS = int(300_000 * TIMEOUT_SCALE)
"""v86 boots the Debian image in ~10 s alone; a loaded 2-core runner can take minutes."""
COMMAND_TIMEOUT_MS = int(60_000 * TIMEOUT_SCALE)


@contextlib.contextmanager
def chromium_page() -> Iterator[object]:
    """A fresh page in a fresh headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            yield page
        finally:
            browser.close()


def wait_for_stage(page: object, stage: str, timeout_ms: int = BOOT_TIMEOUT_MS) -> None:
    """Wait until the page has reached ``stage`` (it records when; it may be past it)."""
    page.wait_for_function("s => window.x86lab && window.x86lab.times && "
                           "window.x86lab.times[s] !== undefined", arg=stage,
                           timeout=timeout_ms)


def type_and_wait(page: object, command: str, expected: str,
                  timeout_ms: int = COMMAND_TIMEOUT_MS) -> str:
    """Type ``command`` into the terminal (xterm's input, like a user) and wait until the
    serial transcript shows ``expected`` after it; returns the transcript's new part."""
    before = page.evaluate("() => window.x86lab.transcript().length")
    page.locator(".vm-terminal").click()
    page.keyboard.type(command + "\n")
    page.wait_for_function(
        "([from, want]) => window.x86lab.transcript().slice(from).includes(want)",
        arg=[before, expected], timeout=timeout_ms)
    return page.evaluate("from => window.x86lab.transcript().slice(from)", before)
