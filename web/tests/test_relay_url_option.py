"""``x86lab web build --relay-url``: WebSocket (or v86's wisp) URLs with a host pass as
given; anything else is refused before the build starts, saying what a relay URL is."""

from __future__ import annotations

import pytest

from web.build.errors import BuildError
from web.build.network import check_relay_url


@pytest.mark.parametrize("url", ["wss://relay.example/", "ws://127.0.0.1:8001/",
                                 "wisps://relay.example:444/wisp/", None, ""])
def test_relay_urls_pass_unchanged(url):
    assert check_relay_url(url) == (url or None)


@pytest.mark.parametrize("url", ["https://relay.example/", "relay.example:8001", "wss:///x",
                                 "ftp://relay.example/"])
def test_other_urls_are_refused(url):
    with pytest.raises(BuildError, match="expected wss://HOST"):
        check_relay_url(url)
