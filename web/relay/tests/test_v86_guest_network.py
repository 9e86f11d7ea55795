"""The whole network path outside the browser: v86 in Node (the harness's engine) with our
relay behind the guest's NIC; /init's udhcpc gets a lease from v86's router and the guest's
wget fetches a file from a server on 127.0.0.1; its sha256 matches the host's hashlib."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness.console import Console
from harness.engines.v86 import V86Engine
from harness.guest import find_image
from web.build.local import serving
from web.relay.background import relay_in_thread
from web.relay.guest_check import download_and_hash, redirect_to, wait_for_lease

from .test_v86_interop import needs_v86

KERNEL = os.environ.get("X86LAB_NET_KERNEL", "tiny")
pytestmark = [pytest.mark.boot, pytest.mark.slow, needs_v86]


def test_guest_downloads_through_relay_and_checksum_matches(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(100_000)
    (tmp_path / "blob.bin").write_bytes(data)
    with serving(tmp_path) as site:
        allow = redirect_to(urlsplit(site).port or 80)
        with relay_in_thread([allow]) as relay:
            engine = V86Engine(relay_url=relay.replace("ws://", "wisp://"))
            session = engine.start(find_image(KERNEL), memory_mib=128)
            try:
                console = Console(session)
                console.wait_for_boot()
                lease = console.run_check(wait_for_lease(), timeout=90)
                out = console.run_check(download_and_hash("blob.bin"), timeout=300)
            finally:
                session.stop()
    assert "inet 192.168.86." in lease  # v86's router hands out its 192.168.86.0/24
    assert out.split()[0] == hashlib.sha256(data).hexdigest()
