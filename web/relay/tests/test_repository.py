"""The guest's package repository on the host side: its index against Debian's own
``dpkg-scanpackages``, its pool names, and that a relay serving it opens exactly the
stand-in destination and not the server's real 127.0.0.1 address. The packages here are
built on the spot with ``dpkg-deb --build`` (no download)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest

from web.relay import frames
from web.relay.client import StreamClosed, WispClient, http_get
from web.relay.config import RelayConfig
from web.relay.guest_check import STAND_IN, redirect_to
from web.relay.policy import Allowlist
from web.relay.repository import pool_name, serving_repository, write_repository

from .conftest import run, running_relay

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="no dpkg-deb")


def _deb(tmp_path: Path, name: str, version: str, payload: bytes) -> Path:
    """A real .deb holding /bin/NAME, with a two-line Description and a Depends."""
    tree = tmp_path / f"tree-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "bin").mkdir()
    (tree / "bin" / name).write_bytes(payload)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: i386\n"
        "Maintainer: x86lab <x86lab@example.invalid>\nDepends: passwd\n"
        f"Description: {name} for the tests\n a continuation line\n")
    out = tmp_path / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)],
                   check=True, capture_output=True)
    return out


def _stanzas(text: str) -> List[Dict[str, str]]:
    found = []
    for block in text.strip().split("\n\n"):
        fields: Dict[str, str] = {}
        for line in block.splitlines():
            if not line.startswith(" "):
                key, _, value = line.partition(": ")
                fields[key] = value
        found.append(fields)
    return found


def test_pool_names_drop_the_epoch_as_debian_pools_do() -> None:
    assert pool_name("busybox-static", "1:1.35.0-4+deb12u1+b1") == \
        "pool/busybox-static_1.35.0-4+deb12u1+b1_i386.deb"
    assert pool_name("bash-static", "5.2.15-2+b13") == "pool/bash-static_5.2.15-2+b13_i386.deb"


@pytest.mark.skipif(shutil.which("dpkg-scanpackages") is None,
                    reason="dpkg-scanpackages missing: apt-get install dpkg-dev")
def test_index_agrees_with_dpkg_scanpackages(tmp_path: Path) -> None:
    debs = [_deb(tmp_path, "zeta", "1:2.0-3", b"z" * 1000), _deb(tmp_path, "alpha", "0.1",
                                                                 b"a" * 10)]
    repo = tmp_path / "repo"
    packages = write_repository(debs, repo)
    assert [p.name for p in packages] == ["alpha", "zeta"]
    ours = _stanzas((repo / "Packages").read_text())
    theirs = _stanzas(subprocess.run(["dpkg-scanpackages", "-m", "pool", "/dev/null"],
                                     cwd=repo, check=True, capture_output=True,
                                     text=True).stdout)
    assert len(ours) == len(theirs) == 2
    theirs_by_name = {fields["Package"]: fields for fields in theirs}
    for fields in ours:
        other = theirs_by_name[fields["Package"]]
        for key in ("Version", "Architecture", "Depends", "Filename", "Size", "SHA256"):
            assert fields[key] == other[key], key
    assert ours[1]["Filename"] == "pool/zeta_2.0-3_i386.deb"
    for deb, fields in zip(reversed(debs), ours):
        data = deb.read_bytes()
        assert fields["SHA256"] == hashlib.sha256(data).hexdigest()
        assert (repo / fields["Filename"]).read_bytes() == data


def test_served_on_loopback_and_reached_only_through_the_stand_in(tmp_path: Path) -> None:
    deb = _deb(tmp_path, "tool", "1.0", b"\x7fELF tool")
    with serving_repository([deb]) as served:
        with urllib.request.urlopen(served.url + "Packages", timeout=10) as response:
            index = response.read()
        assert served.url == f"http://127.0.0.1:{served.port}/"
        config = RelayConfig(allowlist=Allowlist.parse([redirect_to(served.port)]))

        async def scenario() -> tuple:
            async with running_relay(config) as (url, _relay):
                client = await WispClient.connect(url)
                body = await http_get(client, STAND_IN, 80, "/Packages")
                refused = []
                for host, port in (("127.0.0.1", served.port), (STAND_IN, 81),
                                   ("10.0.0.1", 80)):
                    try:
                        await http_get(client, host, port, "/Packages")
                    except StreamClosed as exc:
                        refused.append(exc.reason)
                await client.close()
                return body, refused

        body, refused = run(scenario())
    assert body == index and b"Package: tool\n" in index
    assert refused == [frames.REASON_BLOCKED] * 3
