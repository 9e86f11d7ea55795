"""Token bucket arithmetic (a fake clock, no sleeping), client caps, the Origin rule."""

from __future__ import annotations

import pytest

from web.relay.limits import ClientLedger, Limits, TokenBucket
from web.relay.origin import origin_refusal


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_bucket_allows_a_burst_then_charges_time_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=1000, burst=1000, clock=clock)
    assert bucket.delay_for(1000) == 0.0
    assert bucket.delay_for(500) == pytest.approx(0.5)   # 500 bytes at 1000 B/s
    clock.now += 0.5
    assert bucket.delay_for(0) == 0.0                     # the debt is paid off
    clock.now += 10
    assert bucket.delay_for(1500) == pytest.approx(0.5)   # refill capped at the burst


def test_ledger_caps_streams_and_connections_per_client_ip():
    ledger = ClientLedger(Limits(connections_per_client=1, streams_per_client=2))
    assert ledger.open_connection("192.0.2.1") and not ledger.open_connection("192.0.2.1")
    assert ledger.open_connection("192.0.2.2")  # another client has its own share
    assert ledger.open_stream("192.0.2.1") and ledger.open_stream("192.0.2.1")
    assert not ledger.open_stream("192.0.2.1")
    ledger.close_stream("192.0.2.1")
    assert ledger.open_stream("192.0.2.1")


def test_limits_reject_nonsense():
    with pytest.raises(ValueError, match="at least 1"):
        Limits(streams_per_client=0)


@pytest.mark.parametrize("origin, allowed, accepted", [
    (None, (), True),
    ("http://localhost:3000", (), True),
    ("http://127.0.0.1:8000", (), True),
    ("http://[::1]:8000", (), True),
    ("https://evil.example", (), False),
    ("http://localhost.evil.example", (), False),
    ("https://x86lab.example", ("https://x86lab.example",), True),
    ("HTTPS://X86LAB.example:443", ("https://x86lab.example",), True),
    ("https://x86lab.example:8443", ("https://x86lab.example",), False),
    ("http://localhost:3000", ("https://x86lab.example",), False),
    ("https://anything.example", ("*",), True),
])
def test_origin_rule(origin, allowed, accepted):
    assert (origin_refusal(origin, allowed) is None) == accepted
