"""``x86lab relay --repo`` as a user runs it: a real process serving the relay and the
package repository. Through the relay, the stand-in address gives the index and a .deb
whose sha256 is apt's for that package; the repository's real 127.0.0.1 port is refused
like any other loopback destination. (bash-static is downloaded into the cache at set-up
time, as for the web demo's tools disk.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from typing import Iterator, List

import pytest

from ground.cache import cache_dir
from images import debs
from web.relay import frames
from web.relay.client import StreamClosed, WispClient, http_get
from web.relay.guest_check import STAND_IN
from x86lab.cli import EXIT_USAGE, main

X86LAB = [sys.executable, "-m", "x86lab.cli"]


@pytest.fixture
def relay_with_repo() -> Iterator[tuple]:
    """(stdout's first line, the 'repository' event, the 'listening' event)."""
    proc = subprocess.Popen([*X86LAB, "relay", "--listen", "127.0.0.1:0", "--repo"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        events = {}
        for line in proc.stderr:
            event = json.loads(line)
            events[event["event"]] = event
            if event["event"] == "listening":
                break
        said = proc.stdout.readline() + proc.stdout.readline()
        yield said, events["repository"], events["listening"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_repo_is_reached_through_the_stand_in_only(relay_with_repo: tuple) -> None:
    said, repository, listening = relay_with_repo
    apt = debs.resolve("bash-static", cache_dir("images"))
    repo_port = int(repository["url"].rsplit(":", 1)[1].strip("/"))

    async def scenario() -> tuple:
        client = await WispClient.connect(f"ws://127.0.0.1:{listening['port']}/")
        try:
            index = await http_get(client, STAND_IN, 80, "/Packages")
            filename = next(line.split(": ", 1)[1] for line in index.decode().splitlines()
                            if line.startswith("Filename: "))
            deb = await http_get(client, STAND_IN, 80, "/" + filename)
            refused: List[int] = []
            try:
                await http_get(client, "127.0.0.1", repo_port, "/Packages")
            except StreamClosed as exc:
                refused.append(exc.reason)
            return index, deb, refused
        finally:
            await client.close()

    index, deb, refused = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert repository["guest_url"] == f"http://{STAND_IN}/"
    assert repository["packages"] == [f"bash-static {apt.version}"]
    assert b"Package: bash-static\n" in index
    assert hashlib.sha256(deb).hexdigest() == apt.sha256
    assert refused == [frames.REASON_BLOCKED]
    assert f"?relay=ws://127.0.0.1:{listening['port']}/ " in said
    assert "x86lab-get bash-static" in said and f"http://{STAND_IN}/" in said


@pytest.mark.parametrize("argv, needle", [
    (["relay", "--listen", "127.0.0.1:0", "--package", "bash-static"], "go with --repo"),
    (["relay", "--listen", "127.0.0.1:0", "--repo", "--repo-port", "70000"], "0..65535"),
    (["relay", "--listen", "127.0.0.1:0", "--repo", "--allow", "192.0.2.10:80=127.0.0.1:1"],
     "already redirected"),
])
def test_repo_usage_errors_exit_2(argv: List[str], needle: str,
                                  capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == EXIT_USAGE
    assert needle in capsys.readouterr().err.strip().splitlines()[-1]
