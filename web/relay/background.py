"""A relay on 127.0.0.1 in a background thread, for code that is not async itself: the
browser test, the guest-network test under Node, and measurements."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Iterator, Sequence

from web.relay.config import RelayConfig
from web.relay.policy import Allowlist
from web.relay.server import Relay, bound_port


@contextlib.contextmanager
def relay_in_thread(allow: Sequence[str] = ()) -> Iterator[str]:
    """Yields the relay's ``ws://127.0.0.1:PORT/`` URL; ``allow`` as ``--allow`` takes it."""
    loop = asyncio.new_event_loop()
    relay = Relay(RelayConfig(allowlist=Allowlist.parse(allow)))
    server = loop.run_until_complete(relay.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{bound_port(server)}/"
    finally:
        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
