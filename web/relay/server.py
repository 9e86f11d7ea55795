"""The relay's WebSocket server: handshake checks, then one WispSession per client.

``Relay`` owns the state shared between clients (the ledger of per-client limits and the
running totals); ``start`` returns the listening server so tests and the benchmark can
run a relay on an ephemeral 127.0.0.1 port inside their own event loop.
"""

from __future__ import annotations

import asyncio
import http
from typing import Callable, Optional

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from web.relay.config import RelayConfig
from web.relay.events import RelayStats, log_event, refused
from web.relay.limits import ClientLedger
from web.relay.origin import origin_refusal
from web.relay.session import CLOSE_POLICY, WispSession

CLOSE_TRY_AGAIN = 1013


def _client_ip(ws: ServerConnection) -> str:
    address = ws.remote_address
    return str(address[0]) if address else "unknown"


class Relay:
    def __init__(self, config: Optional[RelayConfig] = None) -> None:
        self.config = config or RelayConfig()
        self.ledger = ClientLedger(self.config.limits)
        self.stats = RelayStats()

    def check_handshake(self, ws: ServerConnection, request: Request) -> Optional[Response]:
        """Refuse (HTTP 403) a page whose Origin is not accepted, before any Wisp byte."""
        why = origin_refusal(request.headers.get("Origin"), self.config.origins)
        if why is None:
            return None
        self.stats.connections_refused += 1
        refused("handshake_refused", client=_client_ip(ws), reason=why)
        return ws.respond(http.HTTPStatus.FORBIDDEN, why + "\n")

    async def handle(self, ws: ServerConnection) -> None:
        client = _client_ip(ws)
        limits = self.config.limits
        if self.stats.open_connections >= limits.total_connections:
            self.stats.connections_refused += 1
            refused("connection_refused", client=client,
                    reason=f"relay full ({limits.total_connections} connections)")
            await ws.close(CLOSE_TRY_AGAIN, "relay full, try again later")
            return
        if not self.ledger.open_connection(client):
            self.stats.connections_refused += 1
            refused("connection_refused", client=client,
                    reason=f"over {limits.connections_per_client} connections per client")
            await ws.close(CLOSE_POLICY, "too many connections from this address")
            return
        self.stats.connections += 1
        self.stats.open_connections += 1
        log_event("connection_open", client=client, path=ws.request.path if ws.request else "")
        try:
            await WispSession(ws, client, self.config, self.ledger, self.stats).run()
        finally:
            self.ledger.close_connection(client)
            self.stats.open_connections -= 1
            log_event("connection_closed", client=client)

    async def start(self, host: str, port: int) -> Server:
        """Listen on ``host:port`` (port 0: any free port; read it from the result)."""
        return await serve(
            self.handle, host, port,
            process_request=self.check_handshake,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_interval,
            max_size=self.config.max_message,
            compression=None,
        )


def bound_port(server: Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def run_forever(relay: Relay, host: str, port: int,
                      announce: Optional[Callable[[int], None]] = None) -> None:
    """Serve until cancelled; ``announce(port)`` is told the bound port once listening
    (``x86lab relay --repo`` prints how to reach the relay then)."""
    server = await relay.start(host, port)
    log_event("listening", host=host, port=bound_port(server))
    if announce is not None:
        announce(bound_port(server))
    async with server:
        await asyncio.Future()
