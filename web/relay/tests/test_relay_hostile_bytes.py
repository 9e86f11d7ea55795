"""Truncated Wisp frames and raw bytes on the relay's port (Hypothesis): whatever one client
sends, nothing in the relay fails (no ERROR is logged: that is where a handler's traceback
would go), the offender's streams are all released, and the next well-formed client
downloads a file through the relay byte for byte. All on 127.0.0.1.

Complements ``test_relay_fuzz.py`` (whole random packets): here well-formed packets are
cut anywhere, and the bytes below WebSocket (the HTTP upgrade, the framing) are random
too. `--hypothesis-show-statistics` shows how many inputs each test threw."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from web.relay import frames
from web.relay.client import WispClient, http_get
from web.relay.config import RelayConfig
from web.relay.policy import Allowlist

from .conftest import run, running_relay, wait_until

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def site(http_site):
    """(port, sha256) of a file the well-formed client fetches through the relay."""
    port, folder = http_site
    (folder / "probe.bin").write_bytes(random.Random(16).randbytes(20_000))
    return port, hashlib.sha256((folder / "probe.bin").read_bytes()).hexdigest()


class _Errors(logging.Handler):
    """Every ERROR record logged anywhere while a scenario runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


def _frames(port: int) -> st.SearchStrategy[bytes]:
    """Well-formed packets of every type (CONNECT to the allowed site, to a name, DATA with
    part of an HTTP request, CONTINUE, CLOSE), each cut at a random length or not."""
    sids = st.integers(0, 3)
    whole = st.one_of(
        st.builds(lambda sid: frames.encode_connect(sid, "127.0.0.1", port), sids),
        st.builds(frames.encode_connect, sids, st.sampled_from(["localhost", "a", "é"]),
                  st.integers(0, 65535), st.integers(0, 3)),
        st.builds(lambda sid, n: frames.encode(frames.DATA, sid, b"GET /probe.bin HTTP/1.0\r\n"
                                               b"\r\n"[:n]), sids, st.integers(0, 40)),
        st.builds(frames.encode_continue, sids, st.integers(0, 2**32 - 1)),
        st.builds(frames.encode_close, sids, st.integers(0, 255)))
    return st.tuples(whole, st.integers(0, 64)).map(
        lambda pair: pair[0][:pair[1]] if pair[1] < len(pair[0]) else pair[0])


async def _fetch_ok(url: str, port: int, digest: str) -> bool:
    client = await WispClient.connect(url)
    try:
        body = await asyncio.wait_for(http_get(client, "127.0.0.1", port, "/probe.bin"), 15)
    finally:
        await client.close()
    return hashlib.sha256(body).hexdigest() == digest


def _scenario(site, offend) -> list:
    """Run ``offend(url)`` against a fresh relay, then check it on a well-formed client;
    returns the ERROR records logged meanwhile."""
    port, digest = site
    errors = _Errors()
    config = RelayConfig(allowlist=Allowlist.parse([f"127.0.0.1:{port}"]), ping_interval=60)

    async def scenario():
        async with running_relay(config) as (url, relay):
            await offend(url)
            await wait_until(lambda: relay.stats.open_connections == 0, 10, "offender gone")
            await wait_until(lambda: relay.stats.open_streams == 0, 10, "streams released")
            assert await _fetch_ok(url, port, digest)

    logging.getLogger().addHandler(errors)
    try:
        run(scenario(), timeout=60)
    finally:
        logging.getLogger().removeHandler(errors)
    return errors.records


@given(st.data())
def test_truncated_wisp_frames_leave_the_relay_serving(site, data):
    sequence = data.draw(st.lists(st.one_of(_frames(site[0]), st.binary(max_size=8)),
                                  max_size=10))

    async def offend(url: str) -> None:
        async with connect(url) as ws:
            try:
                for message in sequence:
                    await ws.send(message)
                await asyncio.sleep(0.01)  # let the relay read and act on what it got
            except ConnectionClosed:
                event("relay closed the connection")

    assert _scenario(site, offend) == []


async def _read_to_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


def _upgrade(port: int) -> bytes:
    return (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


@given(st.data())
def test_raw_bytes_below_websocket_leave_the_relay_serving(site, data):
    """Random bytes; a WebSocket upgrade cut short; or a full upgrade followed by random
    (unmasked, oversized, reserved-opcode...) WebSocket framing bytes."""
    kind = data.draw(st.sampled_from(["random", "cut upgrade", "bad framing"]))
    event(kind)
    tail = data.draw(st.binary(max_size=200))
    cut = data.draw(st.integers(0, 200))

    async def offend(url: str) -> None:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        raw = {"random": tail, "cut upgrade": _upgrade(port)[:cut],
               "bad framing": _upgrade(port) + tail}[kind]
        try:
            writer.write(raw)
            await writer.drain()
            if kind == "bad framing":  # websockets drops a half-closed handshake unread
                try:
                    await asyncio.wait_for(_read_to_eof(reader), 0.3)
                    event(f"{kind}: relay closed first")
                except asyncio.TimeoutError:
                    event(f"{kind}: relay waited for more")
            writer.write_eof()
            await asyncio.wait_for(_read_to_eof(reader), 15)  # a hang fails here
        except ConnectionError:
            event(f"{kind}: connection reset")
        finally:
            writer.close()

    assert _scenario(site, offend) == []
