"""``x86lab web measure DIR --disk``: what reading from the lazy disk costs in the page.

The page starts from its saved state in headless Chromium; the guest then sha256sums the
disk's 2 MiB test file at 61 MiB. Measured per run: the seconds that read takes, the disk
bytes and requests the server sent (``web.serve``'s ``on_body`` hook), through HTTP Range
and through the chunk files (``?disk=chunks``, same server), with chunks/Range as a ratio.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List

from web.build.built import built_manifest
from web.build.chromium import chromium_page, type_and_wait, wait_for_stage
from web.build.errors import BuildError
from web.build.local import serving

MODES = {"range": "", "chunks": "?disk=chunks"}


def _read_once(url: str, command: str, digest: str) -> dict:
    with chromium_page() as page:
        page.goto(url)
        wait_for_stage(page, "prompt")
        start = time.monotonic()
        type_and_wait(page, command, digest)
        seconds = time.monotonic() - start
        mode = page.evaluate("() => window.x86lab.disk")
    return {"mode": mode, "read_s": round(seconds, 2)}


def measure_disk(site: Path, runs: int = 1) -> Dict[str, object]:
    """``runs`` page loads per mode; the disk's size and the bytes fetched for the read."""
    disk = built_manifest(site).get("disk")
    if disk is None:
        raise BuildError(f"{site} has no disk (built with --no-disk)")
    stem = f"os/{disk['file'][: -len('.img')]}"
    test_file = disk["test_file"]
    command = f"sha256sum {disk['mount']}{test_file['path']}"
    figures: Dict[str, object] = {"disk_bytes": disk["size"], "file_bytes": test_file["size"]}
    for mode, query in MODES.items():
        results: List[dict] = []
        for _ in range(runs):
            sent: List[int] = []

            def count(name: str, start: int, length: int, sent: List[int] = sent) -> None:
                if name.startswith(stem):
                    sent.append(length)

            with serving(site, on_body=count) as url:
                run = _read_once(url + query, command, test_file["sha256"])
            results.append({**run, "fetched_bytes": sum(sent), "requests": len(sent)})
        figures[mode] = results
    return figures


def print_disk_figures(figures: Dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures, indent=1))
        return
    size = figures["disk_bytes"]
    best_range = min(run["read_s"] for run in figures["range"])
    print(f"disk {size / 2**20:.0f} MiB; the guest reads a {figures['file_bytes'] >> 20} MiB "
          "file at its end (sha256sum)")
    print(f"{'mode':<8}{'read':>8}{'vs range':>10}{'fetched':>12}{'of disk':>9}{'requests':>10}")
    for mode in MODES:
        for run in figures[mode]:
            print(f"{run['mode']:<8}{run['read_s']:>7.2f}s{run['read_s'] / best_range:>9.2f}x"
                  f"{run['fetched_bytes'] / 2**20:>9.2f}MiB"
                  f"{run['fetched_bytes'] / size:>9.1%}{run['requests']:>10}")
