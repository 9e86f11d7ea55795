"""Throughput of the static server on loopback, beside Python's ``http.server``.

Two phases over one seeded random file: N clients each fetch the whole file, then N
clients each make 1 MiB range requests at random offsets over a kept-alive connection
(what v86's asynchronous disk does). Every body is compared with the file's bytes. The
peer is ``http.server.SimpleHTTPRequestHandler``; it ignores Range, so only the
whole-file figure has a ratio, and the peer's range answers are reported as wrong.
"""

from __future__ import annotations

import functools
import http.client
import json
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, List

from web.serve.server import make_server

RANGE = 1 << 20


class _QuietPeer(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _get(port: int, headers: dict) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/blob.bin", headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _whole(port: int, data: bytes) -> int:
    status, body = _get(port, {})
    return 0 if status == 200 and body == data else 1


def _ranges(port: int, data: bytes, count: int, seed: int) -> int:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    failures = 0
    try:
        for _ in range(count):
            start = rng.randrange(0, len(data) - RANGE)
            conn.request("GET", "/blob.bin",
                         headers={"Range": f"bytes={start}-{start + RANGE - 1}"})
            response = conn.getresponse()
            body = response.read()
            failures += response.status != 206 or body != data[start:start + RANGE]
    finally:
        conn.close()
    return failures


def _timed(clients: int, job: Callable[[int], int]) -> tuple:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        failures = sum(pool.map(job, range(clients)))
    return time.perf_counter() - start, failures


def _start(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def run_benchmark(clients: int = 8, size: int = 64 << 20, ranges_per_client: int = 32,
                  seed: int = 1) -> dict:
    data = random.Random(seed).randbytes(size)
    with tempfile.TemporaryDirectory(prefix="x86lab-serve-bench-") as folder:
        (Path(folder) / "blob.bin").write_bytes(data)
        ours = make_server(Path(folder), quiet=True)
        peer = ThreadingHTTPServer(("127.0.0.1", 0),
                                   functools.partial(_QuietPeer, directory=folder))
        servers: List[ThreadingHTTPServer] = [ours, peer]
        for server in servers:
            _start(server)
        ports = [server.server_address[1] for server in servers]
        try:
            whole = [_timed(clients, lambda _i, p=p: _whole(p, data)) for p in ports]
            ranged = _timed(clients, lambda i: _ranges(ports[0], data, ranges_per_client,
                                                       seed + i))
            peer_range_ok = _ranges(ports[1], data, 1, seed) == 0
        finally:
            for server in servers:
                server.shutdown()
                server.server_close()
    megabytes = clients * size / 1e6
    range_mb = clients * ranges_per_client * RANGE / 1e6
    return {
        "clients": clients, "file_mb": round(size / 1e6, 1),
        "whole_mb_per_s": round(megabytes / whole[0][0], 1),
        "peer_whole_mb_per_s": round(megabytes / whole[1][0], 1),
        "ours_to_peer": round(whole[1][0] / whole[0][0], 2),
        "range_requests": clients * ranges_per_client,
        "range_mb_per_s": round(range_mb / ranged[0], 1),
        "range_requests_per_s": round(clients * ranges_per_client / ranged[0], 1),
        "peer_honours_range": peer_range_ok,
        "failures": whole[0][1] + ranged[1],
    }


def print_figures(figures: dict, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    print(f"whole file ({figures['clients']} clients x {figures['file_mb']} MB): "
          f"{figures['whole_mb_per_s']} MB/s; http.server {figures['peer_whole_mb_per_s']} "
          f"MB/s; ratio {figures['ours_to_peer']}")
    print(f"1 MiB ranges: {figures['range_requests']} requests, "
          f"{figures['range_requests_per_s']} req/s, {figures['range_mb_per_s']} MB/s "
          f"(http.server honours Range: {figures['peer_honours_range']})")
    print(f"failures {figures['failures']}")
