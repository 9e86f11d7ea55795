"""A package installed in the guest through the relay, outside the browser: v86 in Node
(the harness's engine) with our relay behind the guest's NIC, the repository served on
the host's 127.0.0.1 and reached only as the relay's mapped stand-in. The image's
x86lab-get fetches bash-static, checks it against the index and installs it with BusyBox
dpkg; the guest's sha256 of /bin/bash-static must be hashlib's over the file the host's
dpkg-deb extracts, and the installed bash must run and print its version. A tampered
index entry must be refused before dpkg sees it."""

from __future__ import annotations

import os
import time

import pytest

from harness.console import Console
from harness.engines.v86 import V86Engine
from harness.guest import find_image
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

from .test_v86_interop import needs_v86

KERNEL = os.environ.get("X86LAB_NET_KERNEL", "tiny")
pytestmark = [pytest.mark.boot, pytest.mark.slow, needs_v86]


def test_guest_installs_a_package_through_the_relay_and_runs_it() -> None:
    debs = cached_debs([PACKAGE])
    with serving_repository(debs) as served:
        want = expected(debs[0], served.packages[0].version)
        write_tampered(served.folder)
        with relay_in_thread([redirect_to(served.port)]) as relay:
            engine = V86Engine(relay_url=relay.replace("ws://", "wisp://"))
            session = engine.start(find_image(KERNEL), memory_mib=128)
            try:
                console = Console(session)
                console.wait_for_boot()
                console.run_check(wait_for_lease(), timeout=90)
                started = time.monotonic()
                installed = console.run_check(install_and_hash(), timeout=600)
                install_s = time.monotonic() - started
                ran = console.run_check(run_installed(), timeout=60)
                refused = console.run(ask_for_tampered(), timeout=120).output
            finally:
                session.stop()
    print(f"\nx86lab-get {PACKAGE} ({served.packages[0].size} B) in {install_s:.1f} s "
          f"on v86 in Node, {KERNEL} image")
    assert f"x86lab-get: installed {PACKAGE} {served.packages[0].version}" in installed
    assert f"{want.sha256}  {INSTALLED}" in installed
    assert f"bash={want.bash_version}" in ran
    assert "differs from the index" in refused and "not installed" in refused
    assert TAMPERED_REFUSED in refused
