"""``--allow SRC=DST``: an operator maps one exact stand-in destination to one exact local
server (a guest cannot name the relay host's loopback), and nothing else opens up."""

from __future__ import annotations

import hashlib
import ipaddress
import random

import pytest

from web.relay import frames
from web.relay.client import WispClient, http_get
from web.relay.config import RelayConfig
from web.relay.destinations import decide
from web.relay.policy import Allowlist

from .conftest import run, running_relay

STAND_IN = "192.0.2.10"  # TEST-NET-1 (RFC 5737): refused by policy unless allowlisted


def test_redirect_admits_the_source_and_connects_to_the_target():
    allow = Allowlist.parse([f"{STAND_IN}:80=127.0.0.1:8080"])
    decision = run(decide(STAND_IN, 80, allow))
    assert (decision.address, decision.port) == (ipaddress.ip_address("127.0.0.1"), 8080)


@pytest.mark.parametrize("host, port", [
    (STAND_IN, 81),            # the same address on another port
    ("192.0.2.11", 80),        # a neighbour address
    ("127.0.0.1", 8080),       # the target itself is not admitted by being a target
], ids=["other-port", "other-address", "target-directly"])
def test_redirect_opens_nothing_but_its_exact_source(host, port):
    allow = Allowlist.parse([f"{STAND_IN}:80=127.0.0.1:8080"])
    decision = run(decide(host, port, allow))
    assert decision.address is None and decision.close_reason == frames.REASON_BLOCKED


def test_plain_entries_still_connect_where_asked():
    allow = Allowlist.parse(["127.0.0.1:8080"])
    decision = run(decide("127.0.0.1", 8080, allow))
    assert (str(decision.address), decision.port) == ("127.0.0.1", 8080)


def test_ipv6_redirect_target():
    allow = Allowlist.parse([f"{STAND_IN}:443=[::1]:8443"])
    assert allow.destination(ipaddress.ip_address(STAND_IN), 443) == (
        ipaddress.ip_address("::1"), 8443)


@pytest.mark.parametrize("spec, needle", [
    (f"{STAND_IN}:80=localhost:8080", "not an IP address"),
    (f"{STAND_IN}:80=127.0.0.1", "expected IP:PORT"),
    (f"{STAND_IN}:80=", "expected IP:PORT"),
    ("=127.0.0.1:8080", "expected IP:PORT"),
    (f"{STAND_IN}:80=127.0.0.1:99999", "1..65535"),
], ids=["name-target", "no-port", "empty-target", "empty-source", "bad-port"])
def test_bad_redirect_spec_says_what_is_wrong(spec, needle):
    with pytest.raises(ValueError, match=needle):
        Allowlist.parse([spec])


def test_one_source_cannot_be_redirected_twice():
    with pytest.raises(ValueError, match="already redirected"):
        Allowlist.parse([f"{STAND_IN}:80=127.0.0.1:1", f"{STAND_IN}:80=127.0.0.1:2"])


def test_download_from_stand_in_reaches_the_local_server(http_site):
    port, folder = http_site
    data = random.Random(11).randbytes(300_000)
    (folder / "redirected.bin").write_bytes(data)
    config = RelayConfig(allowlist=Allowlist.parse([f"{STAND_IN}:80=127.0.0.1:{port}"]))

    async def scenario():
        async with running_relay(config) as (url, _relay):
            client = await WispClient.connect(url)
            body = await http_get(client, STAND_IN, 80, "/redirected.bin")
            await client.close()
            return body

    assert hashlib.sha256(run(scenario())).hexdigest() == hashlib.sha256(data).hexdigest()
