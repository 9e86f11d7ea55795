"""``x86lab web measure --network``: the emulated link really slows the page's and its Web
Worker's downloads (v86 fetches its files in the worker), and each row says which link
it ran on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pytest

from web.build.chromium import CHROMIUM, chromium_page
from web.build.local import serving
from web.build.measure import PAGE_KINDS, ordered_runs, print_figures
from web.build.throttle import NetworkCondition, emulate, parse_conditions

BLOB_BYTES = 150_000
RATE = 200_000
"""Bytes/s: low enough that the two blobs need 1.5 s, which loopback does in milliseconds."""
SLACK = 0.9
"""The share of bytes / rate a throttled download must at least take."""

PAGE = """<!doctype html><html><body><script>
const t0 = performance.now();
window.done = {};
fetch("page.bin").then(r => r.arrayBuffer()).then(b => {
    window.done.page = {ms: performance.now() - t0, bytes: b.byteLength}; });
const worker = new Worker("worker.js");
worker.onmessage = (e) => { window.done.worker = e.data; };
</script></body></html>"""
WORKER = """const t0 = performance.now();
fetch("worker.bin").then(r => r.arrayBuffer()).then(b =>
    postMessage({ms: performance.now() - t0, bytes: b.byteLength}));"""


def test_conditions_are_read_as_bits_and_milliseconds() -> None:
    none, link = parse_conditions("none, 20mbit-40ms")
    assert none is None
    assert link == NetworkCondition("20mbit-40ms", 2_500_000, 40.0)  # 20e6 bits / 8
    assert parse_conditions("512kbit-150ms")[0].bytes_per_second == 64_000
    for wrong in ("20mb", "20mbit", "0mbit-40ms", "none,none"):
        with pytest.raises(ValueError):
            parse_conditions(wrong)


def test_each_row_names_its_network(capsys: pytest.CaptureFixture) -> None:
    def run(network: str, prompt_ms: int) -> dict:
        return {"network": network, "prompt_ms": prompt_ms, "first_command_ms": 100,
                "bytes": 2**20, "max_frame_gap_ms": 30, "frame_gaps_over_50ms": 0}

    figures = {kind: [run("none", 1000), run("20mbit-40ms", 2000)] for kind in PAGE_KINDS}
    figures["cold main"].append(run("none", 1100))  # a second run, unthrottled
    figures["node"] = [{"prompt_ms": 1000}]
    rows = ordered_runs(figures)
    # grouped by link in the order measured, then by kind; Node last with no link
    assert [(r[0], r[1], r[2]) for r in rows[:3]] == [
        ("chromium cold main", "none", 1), ("chromium cold main", "none", 2),
        ("chromium state main", "none", 1)]
    assert {r[1] for r in rows[len(PAGE_KINDS) + 1:-1]} == {"20mbit-40ms"}
    assert rows[-1][:2] == ("node v86", "")
    print_figures(figures, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    throttled = [line for line in lines if "20mbit-40ms" in line]
    assert len(throttled) == len(PAGE_KINDS)
    assert all("2.00s" in line for line in throttled)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                    "chromium")
def test_emulation_slows_the_page_and_its_worker(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "worker.js").write_text(WORKER)
    for name in ("page.bin", "worker.bin"):
        # random bytes: nothing on the way can compress them below their size
        (tmp_path / name).write_bytes(os.urandom(BLOB_BYTES))

    def load(condition: Optional[NetworkCondition]) -> dict:
        with serving(tmp_path) as url, chromium_page() as page:
            emulate(page, condition)
            page.goto(url + "index.html")
            page.wait_for_function("() => window.done.page && window.done.worker",
                                   timeout=60_000)
            return page.evaluate("() => window.done")

    slow = load(NetworkCondition("test", RATE, 40.0))
    fast = load(None)
    assert slow["page"]["bytes"] == slow["worker"]["bytes"] == BLOB_BYTES
    # both downloads share the link: the later one ends no sooner than all bytes / rate,
    # and the worker's alone needs at least its own bytes / rate (its fetches are slowed).
    # Less SLACK: Chromium's throttle and the scripts' clocks start a few ms apart (seen:
    # 1,479-1,499 ms against 1,500), while loopback takes tens of milliseconds.
    assert max(slow["page"]["ms"], slow["worker"]["ms"]) >= 2 * BLOB_BYTES / RATE * 1000 * SLACK
    assert slow["worker"]["ms"] >= BLOB_BYTES / RATE * 1000 * SLACK
    # on loopback the same loads are quicker, so the bound above measures the emulation
    # (compared with the throttled load, not with a fixed time: a loaded machine slows both)
    assert max(fast["page"]["ms"], fast["worker"]["ms"]) < max(slow["page"]["ms"],
                                                               slow["worker"]["ms"])
