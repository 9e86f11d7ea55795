"""A package installed in the page's guest through the relay: the page (restored from its
saved state) with `?relay=` naming our relay, the repository served on the host's
127.0.0.1 and mapped by the relay to the stand-in address. Typed like a visitor types:
x86lab-get bash-static, the guest's sha256 of the installed file must be hashlib's over
the file the host's dpkg-deb extracts from the same .deb, the installed bash must run, and
a tampered index entry must be refused before dpkg sees it."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from web.build.chromium import (
    CHROMIUM,
    COMMAND_TIMEOUT_MS,
    chromium_page,
    type_and_wait,
    wait_for_stage,
)
from web.relay.background import relay_in_thread
from web.relay.guest_check import redirect_to, wait_for_lease
from web.relay.package_check import (
    INSTALLED,
    PACKAGE,
    TAMPERED_REFUSED,
    ask_for_tampered,
    expected,
    install_and_hash,
    run_installed,
    write_tampered,
)
from web.relay.repository import cached_debs, serving_repository

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]


def test_guest_installs_a_package_through_the_relay_and_runs_it(site_url: str) -> None:
    debs = cached_debs([PACKAGE])
    with serving_repository(debs) as served:
        version = served.packages[0].version
        want = expected(debs[0], version)
        write_tampered(served.folder)
        with relay_in_thread([redirect_to(served.port)]) as relay, chromium_page() as page:
            page.goto(f"{site_url}?relay={quote(relay, safe='')}")
            wait_for_stage(page, "prompt")
            type_and_wait(page, wait_for_lease(), "inet 192.168.86.",
                          timeout_ms=3 * COMMAND_TIMEOUT_MS)
            started = time.monotonic()
            installed = type_and_wait(page, install_and_hash(), f"{want.sha256}  {INSTALLED}",
                                      timeout_ms=10 * COMMAND_TIMEOUT_MS)
            install_s = time.monotonic() - started
            ran = type_and_wait(page, run_installed(), f"bash={want.bash_version}")
            refused = type_and_wait(page, ask_for_tampered(), TAMPERED_REFUSED,
                                    timeout_ms=3 * COMMAND_TIMEOUT_MS)
            boot = page.evaluate("() => window.x86lab.boot")
    print(f"\nx86lab-get {PACKAGE} ({served.packages[0].size} B) in {install_s:.1f} s "
          f"in Chromium (boot: {boot})")
    assert f"x86lab-get: installed {PACKAGE} {version}" in installed
    assert f"{want.sha256}  {INSTALLED}" in installed
    assert f"bash={want.bash_version}" in ran
    assert "differs from the index" in refused
