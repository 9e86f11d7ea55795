"""The guest's network in the page: which NIC (pinned in the manifest with the other
devices, since a saved state restores only into the device set it was made with) and
which Wisp relay the build names by default (the page's ``?relay=`` overrides it)."""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

from harness.engines.v86 import NET_DEVICE
from web.build.errors import BuildError

RELAY_SCHEMES = ("wss", "ws", "wisps", "wisp")


def check_relay_url(url: Optional[str]) -> Optional[str]:
    """``--relay-url`` as given, or a BuildError saying what a relay URL looks like."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in RELAY_SCHEMES or not parts.hostname:
        raise BuildError(f"--relay-url {url!r}: expected wss://HOST[:PORT]/ (ws:// for local "
                         "development), e.g. the address of an `x86lab relay`")
    return url


__all__ = ["NET_DEVICE", "RELAY_SCHEMES", "check_relay_url"]
