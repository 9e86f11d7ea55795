"""A small Wisp v1 client: the tests' and the benchmark's stand-in for v86.

It keeps the same bookkeeping as v86's WispNetworkAdapter (credit from stream 0's
CONTINUE, one DATA spends one credit, a CLOSE ends the stream) so that what passes
against our relay here is what v86 will meet.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Dict, Optional

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from web.relay import frames


class StreamClosed(ConnectionError):
    def __init__(self, reason: Optional[int]) -> None:
        super().__init__(f"Wisp stream closed (reason {reason})")
        self.reason = reason


class WispStream:
    def __init__(self, client: WispClient, stream_id: int, credit: int) -> None:
        self.client = client
        self.id = stream_id
        self.credit = credit
        self.has_credit = asyncio.Event()
        if credit > 0:
            self.has_credit.set()
        self.incoming: asyncio.Queue[Optional[bytes]] = asyncio.Queue()
        self.close_reason: Optional[int] = None

    async def send(self, data: bytes) -> None:
        """Send one DATA packet, waiting for CONTINUE credit like v86 does."""
        await self.has_credit.wait()
        if self.close_reason is not None:
            raise StreamClosed(self.close_reason)
        self.credit -= 1
        if self.credit <= 0:
            self.has_credit.clear()
        await self.client.ws.send(frames.encode(frames.DATA, self.id, data))

    async def read(self) -> bytes:
        """The next chunk, or b"" once the relay has closed the stream."""
        chunk = await self.incoming.get()
        return b"" if chunk is None else chunk

    async def read_all(self) -> bytes:
        parts = []
        while True:
            chunk = await self.read()
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    async def close(self, reason: int = frames.REASON_VOLUNTARY) -> None:
        self.client.streams.pop(self.id, None)
        await self.client.ws.send(frames.encode_close(self.id, reason))

    def _closed(self, reason: Optional[int]) -> None:
        self.close_reason = reason
        self.has_credit.set()  # wake a blocked sender so it sees the close
        self.incoming.put_nowait(None)


class WispClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.streams: Dict[int, WispStream] = {}
        self.initial_credit = 0
        self._ids = itertools.count(1)
        self._ready = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read_loop())

    @classmethod
    async def connect(cls, url: str, origin: Optional[str] = None) -> WispClient:
        ws = await connect(url, origin=origin, compression=None, max_size=None,
                           proxy=None, open_timeout=10)
        client = cls(ws)
        await asyncio.wait_for(client._ready.wait(), 10)
        return client

    async def open(self, host: str, port: int) -> WispStream:
        sid = next(self._ids)
        stream = WispStream(self, sid, self.initial_credit)
        self.streams[sid] = stream
        await self.ws.send(frames.encode_connect(sid, host, port))
        return stream

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def _read_loop(self) -> None:
        try:
            async for message in self.ws:
                self._dispatch(frames.parse(message))  # type: ignore[arg-type]
        except ConnectionClosed:
            pass
        finally:
            for stream in list(self.streams.values()):
                stream._closed(None)
            self._ready.set()

    def _dispatch(self, packet: frames.Packet) -> None:
        if packet.kind == frames.CONTINUE and packet.stream_id == 0:
            self.initial_credit = frames.parse_continue(packet)
            self._ready.set()
            return
        stream = self.streams.get(packet.stream_id)
        if stream is None:
            return
        if packet.kind == frames.DATA:
            stream.incoming.put_nowait(packet.payload)
        elif packet.kind == frames.CONTINUE:
            stream.credit = frames.parse_continue(packet)
            if stream.credit > 0:
                stream.has_credit.set()
        elif packet.kind == frames.CLOSE:
            del self.streams[packet.stream_id]
            stream._closed(frames.parse_close(packet))


async def http_get(client: WispClient, host: str, port: int, path: str) -> bytes:
    """GET ``path`` over a Wisp stream (HTTP/1.0, so the server closes at the end) and
    return the body; raises if the relay closed the stream with anything but 'voluntary'."""
    stream = await client.open(host, port)
    request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    await stream.send(request.encode("ascii"))
    response = await stream.read_all()
    if stream.close_reason not in (frames.REASON_VOLUNTARY,):
        raise StreamClosed(stream.close_reason)
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise ConnectionError(f"HTTP status line {status!r}")
    return body
