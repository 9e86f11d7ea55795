"""Precompressed siblings: the build writes NAME.br / NAME.gz where they pay, and
``web serve`` sends the one the client accepts, with Content-Encoding, never for a Range.
Bodies are checked by decompressing them here with the standard codecs."""

from __future__ import annotations

import gzip
import http.client
import random
import threading

import brotli
import pytest

from web.build.precompress import precompress_site
from web.serve.handler import accepted_encodings
from web.serve.server import make_server

TEXT = ("function boot(){return 42}\n" * 4000).encode()


@pytest.mark.parametrize("header, accepted", [
    ("gzip, deflate, br, zstd", {"gzip", "deflate", "br", "zstd"}),
    ("br;q=0, gzip", {"gzip"}),
    ("gzip;q=0.5, br;q=1.0", {"gzip", "br"}),
    ("identity", {"identity"}),
    ("", set()),
    ("br;q=bogus", set()),
])
def test_accept_encoding_tokens_with_a_nonzero_q(header: str, accepted: set) -> None:
    assert accepted_encodings(header) == accepted


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(port, folder): a built-like folder, precompressed by the build's own step."""
    folder = tmp_path_factory.mktemp("www")
    (folder / "os").mkdir()
    (folder / "os" / "libv86.0123abcd4567ef89.js").write_bytes(TEXT)
    (folder / "os" / "noise.bin").write_bytes(random.Random(5).randbytes(50_000))
    (folder / "os" / "state.0123abcd4567ef89.bin.zst").write_bytes(TEXT)
    (folder / "os" / "rootdisk.0123abcd4567ef89.img").write_bytes(TEXT)
    precompress_site(folder)
    server = make_server(folder, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], folder
    server.shutdown()
    server.server_close()


def _get(port: int, path: str, headers: dict) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_the_build_makes_siblings_only_where_they_pay(site) -> None:
    _, folder = site
    names = sorted(p.name for p in (folder / "os").iterdir())
    assert "libv86.0123abcd4567ef89.js.br" in names
    assert "libv86.0123abcd4567ef89.js.gz" in names
    # random bytes do not shrink; the state is zstd already; the disk is read by Range
    assert not any(n.startswith(("noise.bin.", "state.", "rootdisk.")) and
                   n.endswith((".br", ".gz")) for n in names)


@pytest.mark.parametrize("accept, encoding, decode", [
    ("gzip, deflate, br", "br", brotli.decompress),
    ("gzip", "gzip", gzip.decompress),
    ("identity", None, bytes),
])
def test_the_accepted_encoding_is_sent(site, accept: str, encoding, decode) -> None:
    port, _ = site
    status, headers, body = _get(port, "/os/libv86.0123abcd4567ef89.js",
                                 {"Accept-Encoding": accept})
    assert status == 200
    assert headers.get("content-encoding") == encoding
    assert headers["vary"] == "Accept-Encoding"
    assert headers["content-type"].startswith("text/javascript")
    assert int(headers["content-length"]) == len(body)
    assert decode(body) == TEXT
    if encoding:
        assert len(body) < len(TEXT) / 10  # a repeated line compresses hugely


def test_a_range_request_gets_the_file_itself(site) -> None:
    port, _ = site
    status, headers, body = _get(port, "/os/libv86.0123abcd4567ef89.js",
                                 {"Accept-Encoding": "br", "Range": "bytes=0-8"})
    assert (status, headers.get("content-encoding"), body) == (206, None, TEXT[:9])


def test_each_encoding_has_its_own_etag(site) -> None:
    port, _ = site
    tags = {_get(port, "/os/libv86.0123abcd4567ef89.js", {"Accept-Encoding": accept})[1]["etag"]
            for accept in ("br", "gzip", "identity")}
    assert len(tags) == 3
