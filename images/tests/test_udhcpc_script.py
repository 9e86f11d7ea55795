"""udhcpc's lease script, run by the host's sh with a stand-in ``ip`` that records its
arguments: the lease from the environment becomes the address, route and resolver."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from images import rootfs

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="no host sh")

FAKE_IP = """#!/bin/sh
echo "ip $*" >> "$IP_LOG"
# 'ip -4 addr show' prints the address the test says the interface already has.
[ "$2" = addr ] && [ "$3" = show ] && [ -n "$HAVE" ] && echo "    inet $HAVE brd + scope global"
exit 0
"""


def _run(tmp_path: Path, event: str, lease: Dict[str, str], have: str = "") -> List[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "ip").write_text(FAKE_IP)
    (bin_dir / "ip").chmod(0o755)
    script = tmp_path / "default.script"
    # The guest's /etc/resolv.conf, moved under tmp_path.
    text = rootfs.UDHCPC_SCRIPT.read_text().replace("/etc/resolv.conf",
                                                      str(tmp_path / "resolv.conf"))
    script.write_text(text)
    log = tmp_path / "ip.log"
    log.write_text("")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "IP_LOG": str(log), "HAVE": have,
           "interface": "eth0", **lease}
    done = subprocess.run(["sh", str(script), event], env=env, capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return [line for line in log.read_text().splitlines() if " show " not in line]


LEASE = {"ip": "192.168.86.100", "mask": "24", "router": "192.168.86.1 192.168.86.2",
         "dns": "192.168.86.1 9.9.9.9"}


def test_bound_sets_address_first_router_and_all_name_servers(tmp_path):
    commands = _run(tmp_path, "bound", LEASE)
    assert commands == [
        "ip -4 addr flush dev eth0",
        "ip addr add 192.168.86.100/24 broadcast + dev eth0",
        "ip route replace default via 192.168.86.1 dev eth0",
    ]
    assert (tmp_path / "resolv.conf").read_text() == (
        "nameserver 192.168.86.1\nnameserver 9.9.9.9\n")


def test_renew_with_the_same_address_keeps_it(tmp_path):
    commands = _run(tmp_path, "renew", LEASE, have="192.168.86.100/24")
    assert commands == ["ip route replace default via 192.168.86.1 dev eth0"]


def test_deconfig_brings_the_link_up_without_an_address(tmp_path):
    commands = _run(tmp_path, "deconfig", {})
    assert commands == ["ip link set eth0 up", "ip -4 addr flush dev eth0"]


def test_script_is_installed_where_udhcpc_looks_by_default():
    entries = {entry.path: entry for entry in rootfs.base_entries(b"\x7fELF")}
    entry = entries[rootfs.UDHCPC_SCRIPT_PATH]
    assert entry.data == rootfs.UDHCPC_SCRIPT.read_bytes() and entry.mode & 0o111
