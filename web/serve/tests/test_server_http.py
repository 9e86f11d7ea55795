"""Real HTTP requests on 127.0.0.1 (http.client), checked against the files' own bytes."""

from __future__ import annotations

import http.client
import os
import random
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from web.serve.server import make_server

SIZE = 100_000


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(port, folder, blob bytes): a served folder with a blob, typed files, a secret
    outside it and a symlink pointing at that secret."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text("TOP-SECRET")
    folder = tmp_path_factory.mktemp("www")
    data = random.Random(11).randbytes(SIZE)
    (folder / "blob.bin").write_bytes(data)
    (folder / "v86.wasm").write_bytes(b"\0asm\1\0\0\0")
    (folder / "libv86.mjs").write_text("export {};\n")
    (folder / "app.3f9a1c2b.js").write_text("console.log(1);\n")
    (folder / ".env").write_text("TOP-SECRET")
    (folder / "docs").mkdir()
    (folder / "docs" / "index.html").write_text("<p>docs</p>")
    (folder / "empty-dir").mkdir()
    os.symlink(outside / "secret.txt", folder / "link-out")
    server = make_server(folder, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], folder, data, outside.name
    server.shutdown()
    server.server_close()


def request(port, path, method="GET", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_whole_file_with_cdn_headers(site):
    port, _, data, _ = site
    status, headers, body = request(port, "/blob.bin")
    assert (status, body) == (200, data)
    assert headers["content-length"] == str(SIZE)
    assert headers["accept-ranges"] == "bytes"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-headers"] == "range, x-accept-encoding"
    assert headers["access-control-expose-headers"] == \
        "content-range, content-length, accept-ranges"
    assert headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("header, start, stop", [
    ("bytes=0-0", 0, 1), ("bytes=10-19", 10, 20), ("bytes=-5", SIZE - 5, SIZE),
    ("bytes=99990-", 99990, SIZE), ("bytes=50000-999999999", 50000, SIZE),
])
def test_single_range_is_206_with_exact_bytes(site, header, start, stop):
    port, _, data, _ = site
    status, headers, body = request(port, "/blob.bin", headers={"Range": header})
    assert status == 206 and body == data[start:stop]
    assert headers["content-range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert headers["content-length"] == str(stop - start)


@pytest.mark.parametrize("header", ["bytes=100000-", "bytes=-0"])
def test_unsatisfiable_range_is_416(site, header):
    port, _, _, _ = site
    status, headers, _ = request(port, "/blob.bin", headers={"Range": header})
    assert status == 416 and headers["content-range"] == f"bytes */{SIZE}"


def test_multiple_ranges_fall_back_to_whole_file(site):
    port, _, data, _ = site
    status, _, body = request(port, "/blob.bin", headers={"Range": "bytes=0-1,5-6"})
    assert (status, body) == (200, data)


def test_if_range_honours_range_only_for_the_current_validator(site):
    port, _, data, _ = site
    etag = request(port, "/blob.bin", "HEAD")[1]["etag"]
    fresh = request(port, "/blob.bin", headers={"Range": "bytes=0-9", "If-Range": etag})
    stale = request(port, "/blob.bin", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert (fresh[0], fresh[2]) == (206, data[:10])
    assert (stale[0], stale[2]) == (200, data)


def test_if_none_match_gives_304(site):
    port, _, _, _ = site
    etag = request(port, "/blob.bin", "HEAD")[1]["etag"]
    assert request(port, "/blob.bin", headers={"If-None-Match": etag})[0] == 304


def test_head_has_headers_and_no_body(site):
    port, _, _, _ = site
    status, headers, body = request(port, "/blob.bin", "HEAD")
    assert (status, headers["content-length"], body) == (200, str(SIZE), b"")


def test_options_preflight(site):
    port, _, _, _ = site
    status, headers, _ = request(port, "/blob.bin", "OPTIONS", headers={
        "Origin": "https://x86lab.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    assert status == 204
    assert "GET" in headers["access-control-allow-methods"]
    assert "range" in headers["access-control-allow-headers"]
    assert headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path, expected_type, cache", [
    ("/v86.wasm", "application/wasm", "no-cache"),
    ("/libv86.mjs", "text/javascript; charset=utf-8", "no-cache"),
    ("/app.3f9a1c2b.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"),
    ("/docs/", "text/html; charset=utf-8", "no-cache"),
])
def test_types_and_caching(site, path, expected_type, cache):
    port, _, _, _ = site
    status, headers, _ = request(port, path)
    assert (status, headers["content-type"], headers["cache-control"]) == \
        (200, expected_type, cache)


@pytest.mark.parametrize("path", [
    "/../{out}/secret.txt", "/%2e%2e/{out}/secret.txt", "/docs/../../{out}/secret.txt",
    "/..%2f{out}%2fsecret.txt", "/docs/..%5c..%5c{out}%5csecret.txt", "//{out}/secret.txt",
    "/.env", "/%2eenv", "/link-out",
    "/blob.bin%00.txt", "/empty-dir/", "/missing",
])
def test_no_traversal_dotfiles_symlink_escape_or_listing(site, path):
    port, _, _, outside = site
    status, headers, body = request(port, path.format(out=outside))
    assert status == 404 and b"SECRET" not in body
    assert headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/" + "a" * 256, "/docs/" + "b" * 300 + "/x",
                                  "/" + "/".join(["c" * 200] * 30)], ids=["256", "300", "6000"])
def test_name_too_long_for_the_file_system_is_404_and_the_server_lives(site, path):
    port, _, data, _ = site
    status, headers, body = request(port, path)
    assert status == 404 and body == b"404 Not Found\n"
    assert headers["access-control-allow-origin"] == "*"
    assert request(port, "/blob.bin")[::2] == (200, data)


@pytest.mark.parametrize("header, status, start, stop", [
    ("bytes=" + "9" * 5000 + "-", 416, 0, 0), ("bytes=0-" + "9" * 5000, 206, 0, SIZE),
    ("bytes=-" + "9" * 5000, 206, 0, SIZE), ("bytes=0" + "0" * 5000 + "7-9", 206, 7, 10),
], ids=["start", "end", "suffix", "zeros"])
def test_range_numbers_longer_than_python_parses_by_default(site, header, status, start, stop):
    """Python refuses to convert over 4,300 digits; the RFC has no limit, and a number that
    long names a byte past any file (or, with leading zeros, a small one)."""
    port, _, data, _ = site
    got, headers, body = request(port, "/blob.bin", headers={"Range": header})
    assert got == status
    if status == 206:
        assert body == data[start:stop]


def _raw_exchange(port, raw):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
        return reply


@pytest.mark.parametrize("line, status", [
    (b"GET /blob.bin", b"200"), (b"GET /blob.bin HTTP/0.9", b"505"),
    (b"GET /\x1fx HTTP/0.9", b"400"), (b"\x00", b"400")], ids=repr)
def test_every_reply_has_a_status_line_even_to_http_0_9(site, line, status):
    """http.server answers HTTP/0.9 (and errors in a line that names it) with a bare body:
    no status, no length, no CORS. Here every reply starts with a status line."""
    port, _, data, _ = site
    reply = _raw_exchange(port, line + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 " + status + b" ")
    if status == b"200":
        assert reply.endswith(data)


def test_concurrent_range_clients_each_get_their_bytes(site):
    port, _, data, _ = site
    rng = random.Random(5)
    spans = [(s, s + rng.randrange(1, 4096)) for s in
             (rng.randrange(0, SIZE - 4096) for _ in range(64))]

    def fetch(span):
        start, stop = span
        status, _, body = request(port, "/blob.bin",
                                  headers={"Range": f"bytes={start}-{stop - 1}"})
        return status == 206 and body == data[start:stop]

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(fetch, spans))


def test_keep_alive_connection_serves_several_ranges(site):
    port, _, data, _ = site
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for start in (0, 4096, 8192):
            conn.request("GET", "/blob.bin", headers={"Range": f"bytes={start}-{start + 99}"})
            response = conn.getresponse()
            assert (response.status, response.read()) == (206, data[start:start + 100])
    finally:
        conn.close()
