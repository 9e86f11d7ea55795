"""Relay test fixtures: a stdlib HTTP server on 127.0.0.1 (the independent peer whose
file the tests download) and a way to run a relay inside a test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import AsyncIterator, Iterator, Optional, Tuple

import pytest

from web.relay.config import RelayConfig
from web.relay.server import Relay, bound_port


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def http_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[int, Path]]:
    """(port, folder) of a ThreadingHTTPServer serving a folder on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("site")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], folder
    server.shutdown()
    server.server_close()


@contextlib.asynccontextmanager
async def running_relay(config: Optional[RelayConfig] = None) -> AsyncIterator[Tuple[str, Relay]]:
    """A relay on an ephemeral 127.0.0.1 port: yields (ws:// URL, relay)."""
    relay = Relay(config)
    server = await relay.start("127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{bound_port(server)}/", relay
    finally:
        server.close()
        await server.wait_closed()


def run(coro, timeout: float = 30.0):
    """Run one test's coroutine with a hard time bound, so a hang fails instead."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def next_packet(ws, timeout: float = 5.0):
    """The next Wisp packet the relay sends on a raw WebSocket."""
    from web.relay import frames

    return frames.parse(await asyncio.wait_for(ws.recv(), timeout))


async def close_reason_for(ws, stream_id: int, timeout: float = 5.0) -> int:
    """Read packets until the relay's CLOSE for ``stream_id``; return its reason."""
    from web.relay import frames

    while True:
        packet = await next_packet(ws, timeout)
        if packet.kind == frames.CLOSE and packet.stream_id == stream_id:
            return frames.parse_close(packet)


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def closed_port() -> int:
    """A 127.0.0.1 port that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
