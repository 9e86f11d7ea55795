"""The lazy tools disk in headless Chromium: the guest reads a file near the end of the
64 MiB disk and its sha256 is the one Python computes here; v86 fetched only a small part
of the disk, and that part covers the file's blocks (as e2fsprogs' debugfs lists them).
On a host that ignores Range (Python's http.server) the page falls back to the chunk files
and reads the same bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import List, Tuple

import pytest

from web.build.chromium import CHROMIUM, chromium_page, type_and_wait, wait_for_stage
from web.build.disk import BLOCK_SIZE, TEST_FILE, TEST_FILE_SIZE, file_blocks
from web.build.headers import MANIFEST_NAME
from web.build.local import serving
from web.tests.conftest import SITE_KERNEL
from web.tests.test_disk import expected_pattern, ignoring_range

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]
FETCHED_FRACTION_LIMIT = 0.1
"""The test reads 2 MiB of a 64 MiB disk; mount, metadata and readahead add little."""


@pytest.fixture(scope="module")
def disk(built_site: Path) -> dict:
    entry = json.loads((built_site / MANIFEST_NAME).read_text()).get("disk")
    if entry is None:
        pytest.skip("the session's site was built without a disk")
    return entry


def _read_test_file(url: str, disk: dict) -> Tuple[str, str]:
    """Boot the page (from its state), sha256sum the test file in the guest; returns
    (the page's disk mode, the guest's output)."""
    digest = hashlib.sha256(expected_pattern(TEST_FILE_SIZE)).hexdigest()
    with chromium_page() as page:
        page.goto(url)
        wait_for_stage(page, "prompt")
        out = type_and_wait(page, f"sha256sum {disk['mount']}{TEST_FILE}", digest)
        mode = page.evaluate("() => window.x86lab.disk")
    return mode, out


def _covers(spans: List[Tuple[int, int]], start: int, end: int) -> bool:
    return any(s <= start and end <= s + length for s, length in spans)


def test_lazy_disk_reads_a_file_at_a_high_offset_fetching_only_its_blocks(
        built_site: Path, disk: dict) -> None:
    served: List[Tuple[str, int, int]] = []
    with serving(built_site, on_body=lambda *body: served.append(body)) as url:
        mode, out = _read_test_file(url, disk)
    assert mode == "range"
    assert hashlib.sha256(expected_pattern(TEST_FILE_SIZE)).hexdigest() in out
    spans = [(start, length) for name, start, length in served
             if name == f"os/{disk['file']}"]
    fetched = sum(length for _, length in spans)
    assert TEST_FILE_SIZE <= fetched < FETCHED_FRACTION_LIMIT * disk["size"], spans
    image = built_site / "os" / disk["file"]
    missing = [block for block in file_blocks(image, TEST_FILE)
               if not _covers(spans, block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE)]
    assert missing == []


@pytest.mark.parametrize(("query", "probe"), [("?boot=cold", 32 * 1024), ("", 512)],
                         ids=["cold", "state"])
def test_the_probe_is_the_only_disk_request_before_the_prompt(
        built_site: Path, disk: dict, query: str, probe: int) -> None:
    # The probe comes first and is read whole, so the browser's cache answers every read
    # of the guest inside it: none reaches the server. Cold, the tiny guest reads the disk
    # only there (the kernel's partition scan, /init's mount: 12 KiB in four reads, all in
    # the first 32 KiB), now mostly after its prompt (/init attaches the disk in the
    # background); the Debian guest also reads further on. From the state v86 reads only
    # the first sector (before its start), which the 512-byte probe holds, on either
    # site.
    served: List[Tuple[str, int, int]] = []
    with serving(built_site, on_body=lambda *body: served.append(body)) as url:
        with chromium_page() as page:
            page.goto(url + query)
            wait_for_stage(page, "prompt")
            before_prompt = list(served)
            mode = page.evaluate("() => window.x86lab.disk")
    assert mode == "range"
    spans = [(start, length) for name, start, length in before_prompt
             if name == f"os/{disk['file']}"]
    assert spans[0] == (0, probe)
    assert [(start, length) for start, length in spans[1:] if start + length <= probe] == []
    if SITE_KERNEL == "tiny" or not query:
        assert spans == [(0, probe)]


def test_host_without_range_falls_back_to_chunk_files(built_site: Path, disk: dict) -> None:
    requested: List[str] = []
    with ignoring_range(built_site, requested) as url:
        mode, out = _read_test_file(url, disk)
    assert mode == "chunks"
    assert hashlib.sha256(expected_pattern(TEST_FILE_SIZE)).hexdigest() in out
    stem = disk["file"][: -len(".img")]
    chunks = {path for path in requested if path.startswith(f"/os/{stem}-")}
    # The file's 2 MiB span 8-9 chunks of 256 KiB; mount and metadata a few more.
    assert TEST_FILE_SIZE // disk["chunk_size"] <= len(chunks) < 0.1 * disk["chunks"]


@pytest.mark.parametrize(("query", "wait"), [
    ("", ""),
    ("?boot=cold", "until grep -q ' {mount} ' /proc/mounts; do sleep 0.1; done; "),
], ids=["state", "cold"])
def test_bash_from_the_disk_runs_in_the_page(site_url: str, disk: dict, query: str,
                                             wait: str) -> None:
    # From the state the disk is mounted at once (the snapshot waited for it); cold, /init
    # mounts it in the background a moment after the prompt, so the command waits for it.
    bash = f"{disk['mount']}/bin/bash"
    # Arrays and ${VAR^^} are bash's, not BusyBox ash's: the answer proves which shell ran.
    with chromium_page() as page:
        page.goto(site_url + query)
        wait_for_stage(page, "prompt")
        command = f"{bash} -c 'a=(x86 lab); echo ${{a[1]^^}}-$((6*7))'"
        out = type_and_wait(page, wait.format(mount=disk["mount"]) + command, "LAB-42")
    assert "LAB-42" in out
