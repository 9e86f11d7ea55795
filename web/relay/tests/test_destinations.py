"""Name resolution happens once, and the checked address is the connected address."""

from __future__ import annotations

import ipaddress

import pytest

from web.relay import frames
from web.relay.destinations import decide
from web.relay.policy import Allowlist

from .conftest import run


class CountingResolver:
    def __init__(self, answers):
        self.answers = answers
        self.calls = 0

    async def __call__(self, host, port):
        self.calls += 1
        return list(self.answers)


def test_name_resolving_to_loopback_is_blocked_after_one_lookup():
    resolver = CountingResolver(["127.0.0.1"])
    decision = run(decide("rebind.example", 80, Allowlist(), resolver))
    assert decision.address is None and decision.close_reason == frames.REASON_BLOCKED
    assert resolver.calls == 1


def test_first_admitted_address_is_the_one_returned():
    resolver = CountingResolver(["10.0.0.5", "93.184.215.14", "8.8.8.8"])
    decision = run(decide("mixed.example", 80, Allowlist(), resolver))
    assert decision.address == ipaddress.ip_address("93.184.215.14")
    assert resolver.calls == 1


def test_literal_address_is_not_sent_to_the_resolver():
    resolver = CountingResolver([])
    decision = run(decide("8.8.8.8", 443, Allowlist(), resolver))
    assert decision.address == ipaddress.ip_address("8.8.8.8") and resolver.calls == 0


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f.1", "127.1", "[::1]", "localhost"])
def test_numeric_spellings_of_loopback_are_caught_after_resolution(spelling):
    # The host's own resolver expands these (no network needed); the check sees 127.0.0.1.
    decision = run(decide(spelling, 80, Allowlist()))
    assert decision.address is None and decision.close_reason == frames.REASON_BLOCKED


def test_unresolvable_name_is_unreachable():
    async def failing(host, port):
        raise OSError("Name or service not known")

    decision = run(decide("nowhere.invalid", 80, Allowlist(), failing))
    assert decision.close_reason == frames.REASON_UNREACHABLE
