"""One Wisp TCP stream: resolve, check, connect, then pump bytes both ways.

Client DATA is queued (the Wisp send buffer) and written to the socket by one task that
hands out CONTINUE credit as it drains the queue; socket bytes go to the client as DATA
from another. Whoever ends the stream sets ``close_reason`` (None: tell the client
nothing) and cancels ``run``; its ``finally`` is the one place that releases the socket,
the client's stream slot, and sends the CLOSE, so no path can leak either.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Optional

from web.relay import frames
from web.relay.destinations import decide
from web.relay.events import LOG, log_event, refused

if TYPE_CHECKING:
    from web.relay.session import WispSession

READ_CHUNK = 32 * 1024
QUEUE_BYTES = 1 << 20
"""Client bytes one stream may hold queued. v86 sends one TCP segment (<= 1.5 KiB) per
DATA, so 128 credits are ~192 KiB; the cap stops a client from parking large packets."""


class Stream:
    def __init__(self, session: WispSession, stream_id: int, target: frames.Connect) -> None:
        self.session = session
        self.id = stream_id
        self.target = target
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.queued_bytes = 0
        self.writer: Optional[asyncio.StreamWriter] = None
        self.close_reason: Optional[int] = None
        self.last_activity = time.monotonic()
        self.task: Optional[asyncio.Task] = None
        self._why = "finished"
        self._running = False
        self._ended = False
        self._releasing = False

    # -- called by the session -------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    def accept_data(self, payload: bytes) -> None:
        """Queue client bytes; a client that ignores its credit is cut off, not buffered."""
        self.queue.put_nowait(payload)
        self.queued_bytes += len(payload)
        self.last_activity = time.monotonic()
        if self.queue.qsize() > 2 * self.session.limits.buffer_packets:
            self.end(frames.REASON_THROTTLED, "client overran its CONTINUE credit")
        elif self.queued_bytes > QUEUE_BYTES:
            self.end(frames.REASON_THROTTLED, f"over {QUEUE_BYTES} bytes queued")

    def end(self, reason: Optional[int], why: str) -> None:
        """Stop the stream; ``reason`` is sent to the client as CLOSE unless None.

        Calling it again re-sends the cancellation: Python 3.11's ``wait_for`` can swallow
        one that lands as its inner call completes (CPython gh-86296).
        """
        if self._releasing:
            return
        if not self._ended:
            self._ended = True
            if self.close_reason is None:
                self.close_reason = reason
            self._why = why
        if self._running and self.task is not None:
            self.task.cancel()
        # else: ``run`` has not started yet (a task cancelled before its first step
        # would skip its ``finally``); it sees ``_ended`` and goes straight to release.

    # -- the stream's own task --------------------------------------------------------
    async def run(self) -> None:
        self._running = True
        try:
            if not self._ended and await self._connect():
                await self._pump()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug here must cost one stream, never the relay
            self.close_reason = self.close_reason or frames.REASON_UNSPECIFIED
            self._why = f"internal error: {exc!r}"
            LOG.exception("stream %d of %s failed", self.id, self.session.client)
        finally:
            await self._release()

    async def _connect(self) -> bool:
        session, target = self.session, self.target
        decision = await decide(target.hostname, target.port, session.config.allowlist,
                                session.config.resolver)
        if decision.address is None:
            self.close_reason = decision.close_reason
            self._why = decision.why
            session.stats.streams_refused += 1
            refused("stream_refused", client=session.client, stream=self.id,
                    host=target.hostname, port=target.port, reason=decision.why,
                    wisp_reason=decision.close_reason)
            return False
        try:
            reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(str(decision.address), decision.port),
                session.limits.connect_timeout)
        except asyncio.TimeoutError:
            self.close_reason, self._why = frames.REASON_TIMEOUT, "connect timed out"
            return False
        except ConnectionRefusedError:
            self.close_reason, self._why = frames.REASON_REFUSED, "connection refused"
            return False
        except OSError as exc:
            self.close_reason, self._why = frames.REASON_UNREACHABLE, f"connect failed: {exc}"
            return False
        self._reader = reader
        if self._ended:  # cancelled just as the connect completed (see ``end``)
            return False
        log_event("stream_open", client=session.client, stream=self.id,
                  host=target.hostname, port=target.port, address=str(decision.address),
                  address_port=decision.port)
        await session.send(frames.encode_continue(self.id, session.limits.buffer_packets))
        return True

    async def _pump(self) -> None:
        tasks = [asyncio.ensure_future(self._to_destination()),
                 asyncio.ensure_future(self._to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                self.close_reason = frames.REASON_NETWORK_ERROR
                self._why = f"socket error: {task.exception()}"

    async def _to_destination(self) -> None:
        session, writer = self.session, self.writer
        assert writer is not None
        bucket = session.ledger.bucket(session.client)
        buffer = session.limits.buffer_packets
        consumed = 0
        while not self._ended:
            payload = await self.queue.get()
            self.queued_bytes -= len(payload)
            await bucket.take(len(payload))
            writer.write(payload)
            await writer.drain()
            session.stats.bytes_from_clients += len(payload)
            self.last_activity = time.monotonic()
            consumed += 1
            if consumed >= max(1, buffer // 4):
                consumed = 0
                remaining = max(0, buffer - self.queue.qsize())
                await session.send(frames.encode_continue(self.id, remaining))

    async def _to_client(self) -> None:
        session = self.session
        bucket = session.ledger.bucket(session.client)
        while not self._ended:
            chunk = await self._reader.read(READ_CHUNK)
            if not chunk:
                self.close_reason, self._why = frames.REASON_VOLUNTARY, "destination closed"
                return
            await bucket.take(len(chunk))
            await session.send(frames.encode(frames.DATA, self.id, chunk))
            session.stats.bytes_to_clients += len(chunk)
            self.last_activity = time.monotonic()

    async def _release(self) -> None:
        self._ended = self._releasing = True
        session = self.session
        if self.writer is not None:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 1.0)
            except (OSError, asyncio.TimeoutError, asyncio.CancelledError):
                pass
        session.forget(self)
        log_event("stream_closed", client=session.client, stream=self.id,
                  reason=self._why, wisp_reason=self.close_reason)
        if self.close_reason is not None:
            await session.send(frames.encode_close(self.id, self.close_reason))
