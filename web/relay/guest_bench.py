"""What the guest's network costs and gives, on v86 in Node (the page's emulator build):
boot to the prompt with no NIC, with the NIC and nothing behind it (the page without a
relay), and with the relay (the page with one); then, on the relay boot, seconds until
/init's udhcpc has a lease and wget's throughput through the relay. Guest instruction
counts beside wall times, because the host is shared and wall time is noisy. The peer
figure for throughput is the host fetching the same file from the same server directly.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import urlsplit

from harness.console import Console
from harness.engines.v86 import NET_DEVICE, V86Engine
from harness.guest import find_image
from web.build.local import serving
from web.relay.background import relay_in_thread
from web.relay.guest_check import download_and_hash, redirect_to, wait_for_lease

MEMORY_MIB = 128  # the page's


def _boot(kernel: str, nic: str, relay: Optional[str]) -> tuple:
    """(session, console, figures) for one boot to the prompt."""
    engine = V86Engine(relay_url=relay.replace("ws://", "wisp://") if relay else None,
                       nic=nic)
    started = time.monotonic()
    session = engine.start(find_image(kernel), memory_mib=MEMORY_MIB)
    console = Console(session)
    try:
        console.wait_for_boot()
    except BaseException:
        session.stop()
        raise
    metrics = session.metrics()
    return session, console, {
        "prompt_s": round(time.monotonic() - started, 2),
        "prompt_instructions": metrics.instructions.get("prompt"),
    }


def _network(console: Console, name: str, data: bytes, host_url: str) -> Dict[str, object]:
    started = time.monotonic()
    console.run_check(wait_for_lease(), timeout=120)
    lease_s = time.monotonic() - started
    started = time.monotonic()
    out = console.run_check(download_and_hash(name), timeout=600)
    guest_s = time.monotonic() - started
    started = time.monotonic()
    with urllib.request.urlopen(host_url + name, timeout=60) as response:
        direct = response.read()
    direct_s = time.monotonic() - started
    guest_kib_s = len(data) / guest_s / 1024
    direct_kib_s = len(direct) / direct_s / 1024
    return {
        "lease_after_prompt_s": round(lease_s, 2),
        "wget_bytes": len(data), "wget_s": round(guest_s, 2),
        "wget_kib_per_s": round(guest_kib_s, 1),
        "direct_kib_per_s": round(direct_kib_s, 1),
        "wget_to_direct": round(guest_kib_s / direct_kib_s, 5),
        "sha256_ok": out.split()[0] == hashlib.sha256(data).hexdigest(),
    }


def measure(kernel: str = "tiny", size: int = 1_000_000, runs: int = 1) -> Dict[str, object]:
    """Boots ``runs`` times per configuration; returns the figures as plain data."""
    data = random.Random(2026).randbytes(size)
    rows: Dict[str, List[dict]] = {"no NIC": [], f"{NET_DEVICE}, no relay": [],
                                   f"{NET_DEVICE} + relay": []}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "blob.bin").write_bytes(data)
        with serving(Path(folder)) as files, \
                relay_in_thread([redirect_to(urlsplit(files).port or 80)]) as relay:
            for _ in range(runs):
                for label, nic, url in (("no NIC", "none", None),
                                        (f"{NET_DEVICE}, no relay", NET_DEVICE, None),
                                        (f"{NET_DEVICE} + relay", NET_DEVICE, relay)):
                    session, console, row = _boot(kernel, nic, url)
                    try:
                        if url:
                            row.update(_network(console, "blob.bin", data, files))
                    finally:
                        session.stop()
                    rows[label].append(row)
    return {"kernel": kernel, "memory_mib": MEMORY_MIB, "runs": rows}


def print_figures(figures: dict, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    print(f"v86 in Node, {figures['kernel']} image, {figures['memory_mib']} MiB")
    base = figures["runs"]["no NIC"]
    for label, rows in figures["runs"].items():
        for i, row in enumerate(rows):
            ratio = row["prompt_instructions"] / base[i]["prompt_instructions"]
            line = (f"  {label:16} prompt {row['prompt_s']:6.2f} s, "
                    f"{row['prompt_instructions'] / 1e6:8.1f} M instructions "
                    f"({ratio:.3f} x no NIC)")
            if "wget_s" in row:
                line += (f"; lease {row['lease_after_prompt_s']} s after the prompt; wget "
                         f"{row['wget_bytes']} B in {row['wget_s']} s = "
                         f"{row['wget_kib_per_s']} KiB/s (host direct "
                         f"{row['direct_kib_per_s']} KiB/s, ratio {row['wget_to_direct']}), "
                         f"sha256 {'ok' if row['sha256_ok'] else 'MISMATCH'}")
            print(line)
