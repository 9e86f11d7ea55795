"""One client's WebSocket: the Wisp v1 conversation and the table of its streams.

Errors are contained at the smallest scope that is still unambiguous: a bad CONNECT
closes that stream (CLOSE 0x41), a refused destination closes that stream (CLOSE 0x48),
while a packet too short to name its stream, or a text message, ends this client's
connection. Nothing a client sends can stop the relay serving other clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Dict

from websockets.exceptions import ConnectionClosed

from web.relay import frames
from web.relay.config import RelayConfig
from web.relay.events import RelayStats, log_event, refused
from web.relay.limits import ClientLedger, Limits
from web.relay.stream import Stream

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY = 1008


class WispSession:
    def __init__(self, ws, client: str, config: RelayConfig, ledger: ClientLedger,
                 stats: RelayStats) -> None:
        self.ws = ws
        self.client = client
        self.config = config
        self.ledger = ledger
        self.stats = stats
        self.streams: Dict[int, Stream] = {}
        self.last_message = time.monotonic()
        self.closed = False
        self._sends_in_flight = 0
        self._send_progress = self.last_message

    @property
    def limits(self) -> Limits:
        return self.config.limits

    async def run(self) -> None:
        """Serve until the client leaves, misbehaves or idles; always clean up."""
        watchdog = asyncio.ensure_future(self._watch_idle())
        try:
            await self.send(frames.encode_continue(0, self.limits.buffer_packets))
            while not self.closed:
                message = await self.ws.recv()
                self.last_message = time.monotonic()
                await self._handle(message)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            watchdog.cancel()
            await self._end_streams()
            await asyncio.gather(watchdog, return_exceptions=True)

    async def _end_streams(self) -> None:
        """End every stream and wait for each to release; cancellation is repeated
        because one can be lost inside ``wait_for`` on Python 3.11 (see Stream.end)."""
        pending = {s.task for s in self.streams.values() if s.task is not None}
        while pending:
            for stream in list(self.streams.values()):
                stream.end(None, "client connection ended")
            _done, pending = await asyncio.wait(pending, timeout=1.0)

    async def send(self, frame: bytes) -> None:
        """Send one packet. Progress is timed here and judged by the watchdog, which
        drops a client that has not taken a byte for the idle time (no task per send)."""
        if self.closed:
            return
        if self._sends_in_flight == 0:
            self._send_progress = time.monotonic()
        self._sends_in_flight += 1
        try:
            await self.ws.send(frame)
            self._send_progress = time.monotonic()
        except ConnectionClosed:
            self.closed = True
        finally:
            self._sends_in_flight -= 1

    def _drop_if_not_reading(self, now: float) -> None:
        if self._sends_in_flight and now - self._send_progress > self.limits.idle_seconds:
            self.stats.protocol_errors += 1
            refused("client_not_reading", client=self.client,
                    seconds=self.limits.idle_seconds)
            self.closed = True
            self.ws.transport.abort()

    def forget(self, stream: Stream) -> None:
        if self.streams.get(stream.id) is stream:
            del self.streams[stream.id]
            self.ledger.close_stream(self.client)
            self.stats.open_streams -= 1

    async def _fail(self, code: int, why: str) -> None:
        self.stats.protocol_errors += 1
        refused("protocol_error", client=self.client, reason=why, ws_close=code)
        self.closed = True
        await self.ws.close(code, why[:120])

    async def _handle(self, message: object) -> None:
        if not isinstance(message, bytes):
            await self._fail(CLOSE_UNSUPPORTED_DATA, "text message; Wisp is binary")
            return
        try:
            packet = frames.parse(message)
        except frames.FrameError as exc:
            await self._fail(CLOSE_PROTOCOL_ERROR, str(exc))
            return
        if packet.kind == frames.CONNECT:
            await self._connect(packet)
        elif packet.kind == frames.DATA:
            stream = self.streams.get(packet.stream_id)
            if stream is not None:  # else: in flight when we closed it; drop quietly
                stream.accept_data(packet.payload)
        elif packet.kind == frames.CLOSE:
            stream = self.streams.get(packet.stream_id)
            if stream is not None:
                stream.end(None, f"client closed (reason {frames.parse_close(packet):#x})")
        else:  # CONTINUE is server-to-client only; INFO (0x05) belongs to Wisp v2
            log_event("packet_ignored", logging.DEBUG, client=self.client,
                      kind=packet.kind, stream=packet.stream_id)

    async def _connect(self, packet: frames.Packet) -> None:
        sid = packet.stream_id
        if sid == 0:
            await self._fail(CLOSE_PROTOCOL_ERROR, "CONNECT on reserved stream 0")
            return
        try:
            target = frames.parse_connect(packet)
        except frames.FrameError as exc:
            await self._refuse(sid, frames.REASON_INVALID, str(exc))
            return
        existing = self.streams.get(sid)
        if existing is not None:
            existing.end(frames.REASON_INVALID, "stream id reused while open")
            self.forget(existing)
            return
        if target.stream_type != frames.STREAM_TCP:
            kind = "UDP" if target.stream_type == frames.STREAM_UDP else "unknown"
            await self._refuse(sid, frames.REASON_INVALID,
                               f"{kind} stream type {target.stream_type:#x} not supported")
            return
        if not self.ledger.open_stream(self.client):
            await self._refuse(sid, frames.REASON_BLOCKED,
                               f"over {self.limits.streams_per_client} concurrent streams")
            return
        stream = Stream(self, sid, target)
        self.streams[sid] = stream
        self.stats.streams += 1
        self.stats.open_streams += 1
        stream.start()

    async def _refuse(self, sid: int, reason: int, why: str) -> None:
        self.stats.streams_refused += 1
        refused("stream_refused", client=self.client, stream=sid, reason=why,
                wisp_reason=reason)
        await self.send(frames.encode_close(sid, reason))

    async def _watch_idle(self) -> None:
        tick = min(1.0, self.limits.idle_seconds / 4)
        while not self.closed:
            await asyncio.sleep(tick)
            now = time.monotonic()
            self._drop_if_not_reading(now)
            for stream in list(self.streams.values()):
                if now - stream.last_activity > self.limits.idle_seconds:
                    stream.end(frames.REASON_DATA_TIMEOUT, "idle")
            if not self.streams and \
                    now - self.last_message > self.limits.connection_idle_seconds:
                log_event("connection_idle", client=self.client)
                self.closed = True
                await self.ws.close(1000, "idle")
