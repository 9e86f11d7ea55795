"""The lazy tools disk, on the host: reproducible bytes, the test file far into the disk
with the right content, chunk files that v86's ``use_parts`` finds and that hold the same
bytes, and a page-side Range probe that tells a CDN-like host from one ignoring Range.

Expected values come from outside the code under test: the test pattern is recomputed
here from its one-line definition, file positions come from e2fsprogs' ``debugfs``, the
chunk naming from v86's source (src/buffer.js: ``basename + "-" + start + "-" + end +
extension``)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from web.build.disk import (
    BLOCK_SIZE,
    DISK_SIZE,
    TEST_FILE,
    TEST_FILE_SIZE,
    DiskImage,
    file_blocks,
    make_image,
)
from web.build.hashing import sha256_file
from web.build.local import serving
from web.build.site_disk import CHUNK_SIZE, chunk_name, publish_disk

pytestmark = pytest.mark.skipif(shutil.which("debugfs") is None,
                                reason="e2fsprogs missing: apt-get install e2fsprogs")
LAZY_DISK_JS = Path(__file__).resolve().parents[1] / "site" / "components" / "lazyDisk.js"


def expected_pattern(size: int) -> bytes:
    """The documented test pattern: SHA-256 of "x86lab disk block N", N = 0, 1, ..."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(f"x86lab disk block {n}".encode()).digest()
        n += 1
    return bytes(out[:size])


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A disk made with a stand-in tool (no apt download needed for these checks)."""
    scratch = tmp_path_factory.mktemp("disk")
    tool = scratch / "hello"
    tool.write_text("#!/bin/sh\necho hello from the disk\n")
    image = scratch / "disk.img"
    make_image(image, [(tool, "/bin/hello")], scratch)
    return image


def _dump(image: Path, path: str, out: Path) -> bytes:
    subprocess.run(["debugfs", "-R", f"dump {path} {out}", str(image)], check=True,
                   capture_output=True)
    return out.read_bytes()


def test_disk_is_reproducible(disk: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.img"
    tool = tmp_path / "hello"
    tool.write_text("#!/bin/sh\necho hello from the disk\n")
    make_image(again, [(tool, "/bin/hello")], tmp_path)
    assert sha256_file(again) == sha256_file(disk)


def test_test_file_has_the_pattern_and_sits_near_the_end(disk: Path, tmp_path: Path) -> None:
    content = _dump(disk, TEST_FILE, tmp_path / "high.bin")
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256(
        expected_pattern(TEST_FILE_SIZE)).hexdigest()
    first = min(file_blocks(disk, TEST_FILE)) * BLOCK_SIZE
    assert first > 0.9 * DISK_SIZE
    # The bytes really are there on the raw image, not only through the file system.
    with disk.open("rb") as raw:
        raw.seek(first)
        assert raw.read(4096) == expected_pattern(4096)


def test_tools_are_on_the_disk_executable(disk: Path, tmp_path: Path) -> None:
    assert _dump(disk, "/bin/hello", tmp_path / "hello") == b"#!/bin/sh\necho hello from the disk\n"
    stat = subprocess.run(["debugfs", "-R", "stat /bin/hello", str(disk)], check=True,
                          capture_output=True, text=True).stdout
    assert "Mode:  0755" in stat


def test_chunks_use_v86_names_and_hold_the_disk(disk: Path, tmp_path: Path) -> None:
    assert chunk_name("rootdisk.0123abcd4567ef89.img", 262144) == (
        "rootdisk.0123abcd4567ef89-262144-524288.img")
    entry = publish_disk(DiskImage(disk, sha256_file(disk), DISK_SIZE, {
        "test_file": {}, "tools": []}), tmp_path)
    assert entry["chunks"] * CHUNK_SIZE == DISK_SIZE
    joined = hashlib.sha256()
    for start in range(0, DISK_SIZE, CHUNK_SIZE):
        joined.update((tmp_path / f"{entry['file'][:-4]}-{start}-{start + CHUNK_SIZE}.img")
                      .read_bytes())
    assert joined.hexdigest() == sha256_file(disk) == entry["sha256"]


# -- the page's choice (lazyDisk.js) in Node, against both kinds of host ------------------

PROBE = """
const { diskOption } = await import(process.argv[1]);
// Relative URLs resolve against the page in a browser; here against the site's URL.
const pageFetch = globalThis.fetch;
globalThis.fetch = (url, options) => pageFetch(new URL(url, process.argv[2]), options);
const manifest = { disk: { file: "disk.img", size: 8 << 20, chunk_size: 262144 } };
const length = process.argv[4] ? Number(process.argv[4]) : undefined;
console.log(JSON.stringify(await diskOption(manifest, process.argv[3], length)));
"""


@contextlib.contextmanager
def running(server: http.server.HTTPServer) -> Iterator[str]:
    """``server`` serving on a thread of its own: its base URL, then shut down."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def ignoring_range(folder: Path, requested: Optional[List[str]] = None) -> Iterator[str]:
    """Python's http.server: answers every GET with 200 and the whole file. The paths
    asked for are appended to ``requested``."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args: object) -> None:
            if requested is not None:
                requested.append(self.path)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the page's Range probe hangs up mid-body: expected, not worth a trace

    with running(Server(("127.0.0.1", 0), Quiet)) as url:
        yield url


def _disk_option(base_url: str, requested: str, tmp_path: Path, length: str = "") -> dict:
    """What the page would give v86 as ``hda``, run in Node against ``base_url``;
    ``length``: the probe's length in bytes (the module's default when empty)."""
    module = tmp_path / "lazyDisk.mjs"  # the site's package is not "type": "module"
    module.write_bytes(LAZY_DISK_JS.read_bytes())
    done = subprocess.run(["node", "--input-type=module", "-e", PROBE, module.as_uri(),
                           base_url, requested, length], capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_page_uses_range_on_a_cdn_like_host_and_chunks_elsewhere(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    (folder / "os").mkdir(parents=True)
    (folder / "os" / "disk.img").write_bytes(bytes(8 << 20))
    seen: List[int] = []
    lazy = {"async": True, "size": 8 << 20}
    chunked = {**lazy, "use_parts": True, "fixed_chunk_size": 262144}
    with serving(folder, on_body=lambda name, start, length: seen.append(length)) as url:
        assert _disk_option(url, "", tmp_path) == {"mode": "range",
                                                   "hda": {"url": "os/disk.img", **lazy}}
        assert _disk_option(url, "chunks", tmp_path)["mode"] == "chunks"
    assert seen == [512]  # the probe asked for the first 512-byte sector, not the disk
    with ignoring_range(folder) as url:
        assert _disk_option(url, "", tmp_path) == {"mode": "chunks",
                                                   "hda": {"url": "os/disk.img", **chunked}}


@contextlib.contextmanager
def answering_first_sector(folder: Path) -> Iterator[str]:
    """A host that answers any ranged GET with 206 and the first sector only (a range it
    was not asked for, as a CDN with a short range limit might)."""
    class FirstSector(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            data = (folder / self.path.lstrip("/")).read_bytes()
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-511/{len(data)}")
            self.send_header("Content-Length", "512")
            self.end_headers()
            self.wfile.write(data[:512])

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FirstSector)
    server.daemon_threads = True
    with running(server) as url:
        yield url


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_cold_probe_reads_the_first_32_kib_and_wants_exactly_that_range(
        tmp_path: Path) -> None:
    # A cold boot's probe reads the first 32 KiB (32 * 1024 bytes), where the guest's reads
    # before its prompt lie, so the browser's cache can answer them; the answer must cover
    # what was asked (all of a smaller disk), else Range is not trusted.
    folder = tmp_path / "site"
    (folder / "os").mkdir(parents=True)
    (folder / "os" / "disk.img").write_bytes(bytes(8 << 20))
    seen: List[int] = []
    with serving(folder, on_body=lambda name, start, length: seen.append(length)) as url:
        assert _disk_option(url, "", tmp_path, str(32 * 1024))["mode"] == "range"
        (folder / "os" / "disk.img").write_bytes(bytes(16 * 1024))  # smaller than the probe
        assert _disk_option(url, "", tmp_path, str(32 * 1024))["mode"] == "range"
    assert seen == [32 * 1024, 16 * 1024]
    with answering_first_sector(folder) as url:
        assert _disk_option(url, "", tmp_path, str(32 * 1024))["mode"] == "chunks"
        assert _disk_option(url, "", tmp_path)["mode"] == "range"  # 512 asked, 512 sent


@pytest.mark.parametrize("name", ["rootdisk.0123abcd4567ef89.img",
                                  "rootdisk.0123abcd4567ef89-262144-524288.img"],
                         ids=["image", "chunk"])
def test_disk_files_are_cached_as_immutable_and_ranged(name: str) -> None:
    from web.build.headers import vercel_config
    from web.serve.caching import cache_control

    sent: dict = {}
    for rule in vercel_config()["headers"]:
        if re.fullmatch(rule["source"], f"/os/{name}"):
            sent.update({h["key"].lower(): h["value"] for h in rule["headers"]})
    immutable = "public, max-age=31536000, immutable"
    assert (sent["cache-control"], sent["accept-ranges"]) == (immutable, "bytes")
    assert cache_control(name) == immutable
