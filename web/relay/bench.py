"""Load benchmark on loopback: many Wisp clients fetching through one relay at once.

Everything runs in one event loop on 127.0.0.1: a tiny HTTP server that answers every
request with the same random blob, a relay that admits only that server, and the
clients. Two figures come out: connections/s (each client opens a WebSocket, fetches a
small body, closes; repeated) and MB/s (each client fetches a large body once). The peer
figure is the same large fetch straight from the blob server without the relay, so the
ratio says what the relay costs. Every body is checked against hashlib's digest of the
blob, and open file descriptors and tasks are counted before and after to catch leaks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from typing import Dict, List

from web.relay.client import WispClient, http_get
from web.relay.config import RelayConfig
from web.relay.limits import Limits
from web.relay.policy import Allowlist
from web.relay.server import Relay, bound_port


def open_fds() -> int:
    """Descriptors this process holds (Linux /proc), the leak check's measure."""
    return len(os.listdir("/proc/self/fd"))


class BlobServer:
    """Answers any HTTP request with ``200`` and the bytes of ``path`` (first line only)."""

    def __init__(self, blobs: Dict[str, bytes]) -> None:
        self.blobs = blobs
        self.server: asyncio.AbstractServer

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            body = self.blobs.get(path)
            status = b"200 OK" if body is not None else b"404 Not Found"
            body = body or b""
            writer.write(b"HTTP/1.0 " + status + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, IndexError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def _direct_get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data.partition(b"\r\n\r\n")[2]


async def _fetch_once(url: str, port: int, path: str, digest: str) -> int:
    client = await WispClient.connect(url)
    try:
        body = await http_get(client, "127.0.0.1", port, path)
    finally:
        await client.close()
    return 0 if hashlib.sha256(body).hexdigest() == digest else 1


async def _timed(jobs: List) -> tuple:
    start = time.perf_counter()
    results = await asyncio.gather(*jobs, return_exceptions=True)
    failures = sum(1 for r in results if isinstance(r, BaseException) or r != 0)
    return time.perf_counter() - start, failures


async def run_benchmark(clients: int = 50, rounds: int = 4, small: int = 4096,
                        large: int = 2 << 20, seed: int = 1) -> dict:
    """Run both phases and return the figures (see the module docstring)."""
    rng = random.Random(seed)
    blobs = {"/small": rng.randbytes(small), "/large": rng.randbytes(large)}
    digests = {p: hashlib.sha256(b).hexdigest() for p, b in blobs.items()}
    await asyncio.sleep(0)
    fds_before, tasks_before = open_fds(), len(asyncio.all_tasks())
    origin = BlobServer(blobs)
    port = await origin.start()
    limits = Limits(connections_per_client=clients * 2, streams_per_client=clients * 4,
                    bytes_per_second=1 << 40, idle_seconds=60)
    relay = Relay(RelayConfig(allowlist=Allowlist.parse([f"127.0.0.1:{port}"]),
                              limits=limits))
    server = await relay.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{bound_port(server)}/"

    async def client_rounds() -> int:
        failed = 0
        for _ in range(rounds):
            failed += await _fetch_once(url, port, "/small", digests["/small"])
        return failed

    conn_seconds, conn_failures = await _timed([client_rounds() for _ in range(clients)])
    bulk_seconds, bulk_failures = await _timed(
        [_fetch_once(url, port, "/large", digests["/large"]) for _ in range(clients)])
    direct_start = time.perf_counter()
    direct = await asyncio.gather(*[_direct_get(port, "/large") for _ in range(clients)])
    direct_seconds = time.perf_counter() - direct_start
    direct_failures = sum(1 for body in direct if body != blobs["/large"])
    server.close()
    await server.wait_closed()
    await origin.stop()
    await asyncio.sleep(0.05)  # let closing transports run their last callbacks
    megabytes = clients * large / 1e6
    return {
        "clients": clients,
        "connections": clients * rounds,
        "connections_per_s": round(clients * rounds / conn_seconds, 1),
        "megabytes": round(megabytes, 1),
        "relay_mb_per_s": round(megabytes / bulk_seconds, 1),
        "direct_mb_per_s": round(megabytes / direct_seconds, 1),
        "relay_to_direct": round(direct_seconds / bulk_seconds, 3),
        "failures": conn_failures + bulk_failures + direct_failures,
        "fds_before": fds_before, "fds_after": open_fds(),
        "tasks_before": tasks_before, "tasks_after": len(asyncio.all_tasks()),
        "relay": relay.stats.as_dict(),
    }


def print_figures(figures: dict, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    print(f"clients {figures['clients']}: {figures['connections']} connections at "
          f"{figures['connections_per_s']} connections/s")
    print(f"bulk {figures['megabytes']} MB: relay {figures['relay_mb_per_s']} MB/s, "
          f"direct TCP {figures['direct_mb_per_s']} MB/s, "
          f"ratio relay/direct {figures['relay_to_direct']}")
    print(f"failures {figures['failures']}; fds {figures['fds_before']} -> "
          f"{figures['fds_after']}; tasks {figures['tasks_before']} -> "
          f"{figures['tasks_after']}")
