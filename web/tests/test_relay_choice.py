"""Which relay the page puts behind the guest's NIC (components/network.js, in Node):
``?relay=`` beats the build's default, ``none`` turns it off, ws/wss become v86's
wisp/wisps spelling, anything else is refused with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pytest

from .nodejs import needs_node, run_module

DRIVER = """
const { chooseRelay, netDevice } = await import(process.argv[1]);
const manifest = JSON.parse(process.argv[2]);
const requested = process.argv[3] === "<absent>" ? null : process.argv[3];
const choice = chooseRelay(manifest, requested);
console.log(JSON.stringify({ ...choice, net: netDevice(manifest, choice.url) }));
"""

pytestmark = needs_node


def _choose(tmp_path: Path, default: Optional[str], requested: Optional[str]) -> dict:
    manifest = {"relay_url": default, "devices": {"net": "ne2k"}}
    return run_module("network", DRIVER, tmp_path, json.dumps(manifest),
                      "<absent>" if requested is None else requested)


@pytest.mark.parametrize("default, requested, url", [
    (None, None, None),
    ("wss://relay.example/", None, "wisps://relay.example/"),
    ("wss://relay.example/", "ws://127.0.0.1:8001/", "wisp://127.0.0.1:8001/"),
    ("wss://relay.example/", "none", None),
    ("wss://relay.example/", "", None),
    (None, "wisps://relay.example:444/x", "wisps://relay.example:444/x"),
], ids=["nothing", "build-default", "query-wins", "query-none", "query-empty", "wisp-form"])
def test_relay_choice(tmp_path: Path, default: Optional[str], requested: Optional[str],
                      url: Optional[str]) -> None:
    choice = _choose(tmp_path, default, requested)
    assert (choice["url"], choice["error"]) == (url, "")
    expected_net = {"type": "ne2k", **({"relay_url": url} if url else {})}
    assert choice["net"] == expected_net


@pytest.mark.parametrize("requested", ["http://relay.example/", "relay.example:8001"])
def test_other_urls_are_refused_and_the_nic_stays(tmp_path: Path, requested: str) -> None:
    choice = _choose(tmp_path, None, requested)
    assert choice["url"] is None and requested in choice["error"]
    assert choice["net"] == {"type": "ne2k"}
