"""Malformed, truncated, greedy and slow clients: each is cut off at the smallest scope,
logged, and the relay goes on serving others without leaking sockets or tasks."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from web.relay import frames
from web.relay.bench import open_fds
from web.relay.client import WispClient, http_get
from web.relay.config import RelayConfig
from web.relay.limits import Limits
from web.relay.policy import Allowlist

from .conftest import close_reason_for, next_packet, run, running_relay, wait_until


@pytest.fixture(scope="module")
def site(http_site):
    port, folder = http_site
    (folder / "small.bin").write_bytes(random.Random(3).randbytes(50_000))
    (folder / "big.bin").write_bytes(random.Random(4).randbytes(24 << 20))
    return port, hashlib.sha256((folder / "small.bin").read_bytes()).hexdigest()


def _config(port: int, **limits) -> RelayConfig:
    return RelayConfig(allowlist=Allowlist.parse([f"127.0.0.1:{port}"]),
                       limits=Limits(**limits), ping_interval=60)


async def _fetch_ok(url: str, port: int, digest: str) -> bool:
    client = await WispClient.connect(url)
    try:
        body = await http_get(client, "127.0.0.1", port, "/small.bin")
    finally:
        await client.close()
    return hashlib.sha256(body).hexdigest() == digest


async def _ws_close_code(ws) -> int:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code


def test_bad_connect_closes_that_stream_and_the_connection_keeps_working(site):
    port, digest = site

    async def scenario():
        async with running_relay(_config(port)) as (url, _relay):
            async with connect(url) as ws:
                await ws.send(b"\x01\x09\x00\x00\x00\x01\x50")  # CONNECT cut inside the port
                reason = await close_reason_for(ws, 9)
                await ws.send(frames.encode_connect(10, "127.0.0.1", port))
                await ws.send(frames.encode(frames.DATA, 10, b"GET /small.bin HTTP/1.0\r\n\r\n"))
                kinds = set()
                while frames.CLOSE not in kinds:
                    kinds.add((await next_packet(ws)).kind)
            return reason, kinds

    reason, kinds = run(scenario())
    assert reason == frames.REASON_INVALID
    assert frames.DATA in kinds


@pytest.mark.parametrize("message, code", [
    (b"\x02\x01\x00", 1002), ("hello", 1003), (frames.encode_connect(0, "8.8.8.8", 80), 1002),
], ids=["truncated-header", "text", "connect-on-stream-0"])
def test_unparseable_message_ends_only_that_connection(site, message, code):
    port, digest = site

    async def scenario():
        async with running_relay(_config(port)) as (url, relay):
            async with connect(url) as ws:
                await next_packet(ws)
                await ws.send(message)
                got = await _ws_close_code(ws)
            return got, await _fetch_ok(url, port, digest), relay.stats.protocol_errors

    got, other_ok, errors = run(scenario())
    assert (got, other_ok, errors) == (code, True, 1)


def test_foreign_origin_is_refused_at_the_handshake():
    async def scenario():
        async with running_relay(RelayConfig()) as (url, relay):
            with pytest.raises(InvalidStatus) as info:
                await connect(url, origin="https://evil.example")
            return info.value.response.status_code, relay.stats.connections_refused

    assert run(scenario()) == (403, 1)


def test_streams_over_the_limit_are_refused_with_0x48(site):
    port, _ = site

    async def scenario():
        async with running_relay(_config(port, streams_per_client=2)) as (url, _relay):
            async with connect(url) as ws:
                for sid in (1, 2, 3):
                    await ws.send(frames.encode_connect(sid, "127.0.0.1", port))
                return await close_reason_for(ws, 3)

    assert run(scenario()) == frames.REASON_BLOCKED


@pytest.mark.parametrize("limits, code", [
    (Limits(connections_per_client=1), 1008),   # policy violation: this client has enough
    (Limits(total_connections=1), 1013),        # try again later: the relay is full
], ids=["per-client", "relay-total"])
def test_second_connection_over_a_cap_is_closed(limits, code):
    async def scenario():
        async with running_relay(RelayConfig(limits=limits)) as (url, _relay):
            async with connect(url) as first, connect(url) as second:
                await next_packet(first)
                return await _ws_close_code(second)

    assert run(scenario()) == code


def test_connection_without_streams_is_closed_when_idle():
    async def scenario():
        limits = Limits(connection_idle_seconds=0.3)
        async with running_relay(RelayConfig(limits=limits)) as (url, _relay):
            async with connect(url) as ws:
                await next_packet(ws)
                return await _ws_close_code(ws)

    assert run(scenario()) == 1000


def test_idle_stream_is_closed_with_data_timeout(site):
    port, _ = site

    async def scenario():
        async with running_relay(_config(port, idle_seconds=0.5)) as (url, _relay):
            async with connect(url) as ws:
                await ws.send(frames.encode_connect(1, "127.0.0.1", port))  # and say nothing
                return await close_reason_for(ws, 1)

    assert run(scenario()) == frames.REASON_DATA_TIMEOUT


@pytest.mark.parametrize("buffer, count, size", [(4, 20, 1000), (128, 6, 250_000)],
                         ids=["packets-over-credit", "bytes-over-cap"])
def test_client_ignoring_its_credit_is_cut_off(site, buffer, count, size):
    port, _ = site
    config = _config(port, buffer_packets=buffer, bytes_per_second=1000)

    async def scenario():
        async with running_relay(config) as (url, _relay):
            async with connect(url) as ws:
                await ws.send(frames.encode_connect(1, "127.0.0.1", port))
                for _ in range(count):
                    await ws.send(frames.encode(frames.DATA, 1, b"x" * size))
                return await close_reason_for(ws, 1)

    assert run(scenario()) == frames.REASON_THROTTLED


def test_client_that_stops_reading_is_dropped_and_leaks_nothing(site):
    port, digest = site

    async def scenario():
        fds_before, tasks_before = open_fds(), len(asyncio.all_tasks())
        async with running_relay(_config(port, idle_seconds=1.0)) as (url, relay):
            slow = await connect(url, max_queue=1)  # stops reading once one message waits
            await slow.send(frames.encode_connect(1, "127.0.0.1", port))
            await slow.send(frames.encode(frames.DATA, 1, b"GET /big.bin HTTP/1.0\r\n\r\n"))
            other_ok = await _fetch_ok(url, port, digest)
            await wait_until(lambda: relay.stats.open_connections == 0, 20, "slow client drop")
            stats = relay.stats
            slow.transport.abort()
            await slow.wait_closed()
        await wait_until(lambda: open_fds() <= fds_before, 10, "descriptors released")
        return other_ok, stats, len(asyncio.all_tasks()) - tasks_before

    other_ok, stats, extra_tasks = run(scenario(), timeout=60)
    assert other_ok and stats.protocol_errors == 1 and stats.open_streams == 0
    assert extra_tasks == 0


def test_client_close_mid_download_releases_the_stream(site):
    port, _ = site

    async def scenario():
        async with running_relay(_config(port)) as (url, relay):
            client = await WispClient.connect(url)
            stream = await client.open("127.0.0.1", port)
            await stream.send(b"GET /big.bin HTTP/1.0\r\n\r\n")
            assert await stream.read()  # the download has started
            await stream.close()
            await wait_until(lambda: relay.stats.open_streams == 0, 10, "stream release")
            still_open = relay.stats.open_connections
            await client.close()
            return still_open

    assert run(scenario()) == 1  # the WebSocket itself stays usable
