"""Per-client limits: WebSocket connections, concurrent streams, bytes per second.

A client is a remote IP address, not one WebSocket: a page that opens ten sockets gets
the same share as a page that opens one. Bytes are metered by a token bucket (rate,
burst of one second's worth) that throttles rather than refuses, so a download slows
down instead of failing; connections and streams over their caps are refused.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable, Dict


@dataclass(frozen=True)
class Limits:
    connections_per_client: int = 8
    streams_per_client: int = 64
    bytes_per_second: int = 4 * 1024 * 1024
    idle_seconds: float = 120.0
    """A stream that moves no byte this long is closed (CLOSE 0x47); so is a client that
    does not read what the relay sends for this long."""
    connection_idle_seconds: float = 900.0
    """A WebSocket with no streams and no packets this long is closed. Longer than the
    stream limit because v86 waits 10 s before reconnecting, and a guest's next TCP
    connection made in that gap would be lost."""
    total_connections: int = 1024
    """WebSockets from all clients together: keeps the relay inside its descriptor limit."""
    connect_timeout: float = 10.0
    buffer_packets: int = 128
    """Wisp CONTINUE credit: DATA packets the relay queues per stream before the socket."""

    def __post_init__(self) -> None:
        for name in ("connections_per_client", "streams_per_client", "bytes_per_second",
                     "buffer_packets", "total_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"limit {name} must be at least 1")
        if min(self.idle_seconds, self.connection_idle_seconds, self.connect_timeout) <= 0:
            raise ValueError("idle and connect timeouts must be positive")


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; ``take`` waits for tokens."""

    def __init__(self, rate: float, burst: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay_for(self, amount: float) -> float:
        """Take ``amount`` tokens (going into debt if need be) and say how long the
        caller must wait to have paid for them; debt lets one big packet through."""
        self._refill()
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def take(self, amount: float) -> None:
        wait = self.delay_for(amount)
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class ClientShare:
    bucket: TokenBucket
    connections: int = 0
    streams: int = 0


@dataclass
class ClientLedger:
    """What each client IP currently holds; the relay asks before it grants."""

    limits: Limits
    clients: Dict[str, ClientShare] = field(default_factory=dict)

    def _share(self, client: str) -> ClientShare:
        share = self.clients.get(client)
        if share is None:
            rate = self.limits.bytes_per_second
            share = self.clients[client] = ClientShare(TokenBucket(rate, rate))
        return share

    def bucket(self, client: str) -> TokenBucket:
        return self._share(client).bucket

    def _acquire(self, client: str, counter: str, cap: int) -> bool:
        share = self._share(client)
        if getattr(share, counter) >= cap:
            return False
        setattr(share, counter, getattr(share, counter) + 1)
        return True

    def open_connection(self, client: str) -> bool:
        return self._acquire(client, "connections", self.limits.connections_per_client)

    def close_connection(self, client: str) -> None:
        share = self._share(client)
        share.connections -= 1
        if share.connections <= 0 and share.streams <= 0:
            del self.clients[client]  # forget idle clients so the table cannot grow

    def open_stream(self, client: str) -> bool:
        return self._acquire(client, "streams", self.limits.streams_per_client)

    def close_stream(self, client: str) -> None:
        self._share(client).streams -= 1
