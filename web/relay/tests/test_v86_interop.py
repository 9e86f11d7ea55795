"""Interoperability with the client we must serve: v86's own WispNetworkAdapter, run in
Node from the v86 build the harness installs, downloads a file through our relay."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest

from ground.cache import REPO_ROOT
from web.relay import frames
from web.relay.config import RelayConfig
from web.relay.policy import Allowlist

from .conftest import running_relay

LIBV86 = REPO_ROOT / "harness/engines/v86/node_modules/v86/build/libv86-debug.js"
PEER = Path(__file__).with_name("v86_wisp_peer.js")

needs_v86 = pytest.mark.skipif(
    shutil.which("node") is None or not LIBV86.exists(),
    reason="needs node and v86 (npm ci in harness/engines/v86)")


async def _v86_fetch(host: str, port: int, path: str, config: RelayConfig) -> dict:
    async with running_relay(config) as (url, _relay):
        proc = await asyncio.create_subprocess_exec(
            "node", "--experimental-websocket", str(PEER), str(LIBV86), url, host,
            str(port), path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out.decode().strip().splitlines()[-1])


@needs_v86
def test_v86_adapter_downloads_through_relay(http_site):
    port, folder = http_site
    data = random.Random(21).randbytes(700_000)
    (folder / "v86.bin").write_bytes(data)
    config = RelayConfig(allowlist=Allowlist.parse([f"127.0.0.1:{port}"]))
    result = asyncio.run(_v86_fetch("127.0.0.1", port, "/v86.bin", config))
    assert result == {"reason": frames.REASON_VOLUNTARY, "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()}


@needs_v86
def test_v86_adapter_sees_refusal_as_close_0x48(http_site):
    port, _ = http_site
    result = asyncio.run(_v86_fetch("127.0.0.1", port, "/", RelayConfig()))
    assert result["reason"] == frames.REASON_BLOCKED and result["bytes"] == 0
