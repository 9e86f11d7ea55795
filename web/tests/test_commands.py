"""The two commands as a user runs them: real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import sys
import threading
import urllib.request

import pytest

from web.relay.client import WispClient, http_get
from web.serve.server import make_server
from x86lab.cli import EXIT_USAGE, main

X86LAB = [sys.executable, "-m", "x86lab.cli"]


@pytest.fixture
def process():
    """Start a command; it is terminated (by its own pid) when the test ends."""
    started = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([*X86LAB, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def test_web_serve_serves_ranges_from_the_named_folder(tmp_path, process):
    data = random.Random(2).randbytes(5000)
    (tmp_path / "disk.img").write_bytes(data)
    proc = process("web", "serve", str(tmp_path), "--port", "0", "--quiet")
    line = proc.stdout.readline()  # "serving DIR at http://127.0.0.1:PORT/"
    url = line.split(" at ")[1].strip() + "disk.img"
    request = urllib.request.Request(url, headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert (response.status, response.read()) == (206, data[100:200])


def test_relay_command_carries_a_download(tmp_path, process):
    data = random.Random(9).randbytes(300_000)
    (tmp_path / "f.bin").write_bytes(data)
    site = make_server(tmp_path, quiet=True)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    site_port = site.server_address[1]
    proc = process("relay", "--listen", "127.0.0.1:0", "--allow", f"127.0.0.1:{site_port}")
    for line in proc.stderr:
        event = json.loads(line)
        if event["event"] == "listening":
            break

    async def fetch() -> bytes:
        client = await WispClient.connect(f"ws://127.0.0.1:{event['port']}/")
        try:
            return await http_get(client, "127.0.0.1", site_port, "/f.bin")
        finally:
            await client.close()

    try:
        body = asyncio.run(asyncio.wait_for(fetch(), 30))
    finally:
        site.shutdown()
        site.server_close()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("argv, needle", [
    (["relay"], "--listen HOST:PORT is required"),
    (["relay", "--listen", "nowhere"], "expected HOST:PORT"),
    (["relay", "--listen", "127.0.0.1:0", "--allow", "example.org:80"], "not an IP address"),
    (["relay", "--listen", "127.0.0.1:0", "--max-streams", "0"], "at least 1"),
    (["relay", "--listen", "127.0.0.1:0", "--allow", "192.0.2.10:80=localhost:80"],
     "not an IP address"),
    (["web", "build", "--out", "/nonexistent/x86lab-out", "--relay-url", "http://relay"],
     "expected wss://HOST"),
    (["web"], "needs a verb"),
    (["web", "serve", "/no/such/folder", "--port", "0"], "not a directory"),
    (["web", "measure", "/no/such/site", "--bytes", "--profile"], "not with --bytes"),
    (["web", "measure", "/no/such/site", "--bytes", "--disk"], "one at a time"),
    (["web", "measure", "/no/such/site", "--bytes"], "is not a built site"),
])
def test_usage_errors_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1]


def test_relay_bench_prints_figures(capsys):
    assert main(["relay", "--bench", "4", "--quiet", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["failures"] == 0 and figures["connections"] == 16
