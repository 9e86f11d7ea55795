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
