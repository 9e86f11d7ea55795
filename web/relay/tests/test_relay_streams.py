"""End to end on 127.0.0.1: our Wisp client, the relay, a stdlib HTTP server."""

from __future__ import annotations

import hashlib
import json
import logging
import random

from websockets.asyncio.client import connect

from web.relay import frames
from web.relay.client import WispClient, http_get
from web.relay.config import RelayConfig
from web.relay.policy import Allowlist

from .conftest import close_reason_for, closed_port, next_packet, run, running_relay


def _allow(port: int) -> RelayConfig:
    return RelayConfig(allowlist=Allowlist.parse([f"127.0.0.1:{port}"]))


def test_download_through_relay_matches_host_checksum(http_site):
    port, folder = http_site
    (folder / "disk.img").write_bytes(random.Random(7).randbytes(1_500_000))
    expected = hashlib.sha256((folder / "disk.img").read_bytes()).hexdigest()

    async def scenario():
        async with running_relay(_allow(port)) as (url, relay):
            client = await WispClient.connect(url)
            body = await http_get(client, "127.0.0.1", port, "/disk.img")
            await client.close()
            return body, relay.stats

    body, stats = run(scenario())
    assert hashlib.sha256(body).hexdigest() == expected
    assert stats.bytes_to_clients > len(body)  # body plus the HTTP head


def test_relay_opens_with_continue_on_stream_0_carrying_the_buffer_size():
    async def scenario():
        async with running_relay(RelayConfig()) as (url, _relay):
            async with connect(url) as ws:
                return await next_packet(ws)

    packet = run(scenario())
    assert (packet.kind, packet.stream_id) == (frames.CONTINUE, 0)
    assert frames.parse_continue(packet) == 128


def _refusal_reason(host: str, port: int, config: RelayConfig,
                    stream_type: int = frames.STREAM_TCP) -> int:
    async def scenario():
        async with running_relay(config) as (url, _relay):
            async with connect(url) as ws:
                await ws.send(frames.encode_connect(5, host, port, stream_type))
                return await close_reason_for(ws, 5)

    return run(scenario())


def test_loopback_is_refused_without_allowlist_and_logged(http_site, caplog):
    port, _ = http_site
    caplog.set_level(logging.WARNING, logger="x86lab.relay")
    assert _refusal_reason("127.0.0.1", port, RelayConfig()) == frames.REASON_BLOCKED
    events = [json.loads(r.getMessage()) for r in caplog.records]
    refusal = next(e for e in events if e["event"] == "stream_refused")
    assert refusal["port"] == port and "loopback" in refusal["reason"]


def test_private_destination_is_refused_without_connecting():
    assert _refusal_reason("10.0.0.1", 80, RelayConfig()) == frames.REASON_BLOCKED


def test_name_resolving_to_loopback_is_refused():
    assert _refusal_reason("localhost", 80, RelayConfig()) == frames.REASON_BLOCKED


def test_udp_stream_is_refused_as_unsupported():
    reason = _refusal_reason("8.8.8.8", 53, RelayConfig(), frames.STREAM_UDP)
    assert reason == frames.REASON_INVALID


def test_closed_allowlisted_port_reports_connection_refused():
    port = closed_port()
    assert _refusal_reason("127.0.0.1", port, _allow(port)) == frames.REASON_REFUSED


def test_a_failing_resolver_costs_one_stream_not_the_relay():
    async def broken(host, port):
        return ["not-an-address"]

    assert _refusal_reason("example.org", 80, RelayConfig(resolver=broken)) == \
        frames.REASON_UNSPECIFIED
