"""vercel.json's precompressed files: a client naming br in Accept-Encoding is rewritten
to NAME.br and told Content-Encoding: br; any other client gets NAME with no encoding.
A small model of the host's rules (first matching rewrite, every matching header rule in
order, ``has`` on a request header) is applied here."""

from __future__ import annotations

import re

import pytest

from web.build.headers import vercel_config

WASM = "os/v86.0123456789abcdef.wasm"


def _applies(rule: dict, path: str, accept: str) -> bool:
    if not re.fullmatch(rule["source"], path):
        return False
    return all(re.fullmatch(c["value"], accept) for c in rule.get("has", ())
               if c["key"] == "accept-encoding")


def _answer(path: str, accept: str) -> tuple:
    config = vercel_config([WASM])
    served = next((r["destination"] for r in config["rewrites"]
                   if _applies(r, path, accept)), path)
    headers: dict = {}
    for rule in config["headers"]:
        if _applies(rule, path, accept):
            headers.update({h["key"].lower(): h["value"] for h in rule["headers"]})
    return served, headers


@pytest.mark.parametrize("accept", ["gzip, deflate, br, zstd", "br"])
def test_brotli_clients_get_the_br_file_with_its_encoding(accept: str) -> None:
    served, headers = _answer(f"/{WASM}", accept)
    assert served == f"/{WASM}.br"
    assert headers["content-encoding"] == "br"
    assert headers["content-type"] == "application/wasm"
    assert headers["vary"] == "Accept-Encoding"


@pytest.mark.parametrize("accept", ["gzip, deflate", "", "brotli-not-really"])
def test_other_clients_get_the_file_itself(accept: str) -> None:
    served, headers = _answer(f"/{WASM}", accept)
    assert served == f"/{WASM}" and "content-encoding" not in headers
    assert headers["vary"] == "Accept-Encoding"


def test_files_without_a_sibling_are_not_rewritten() -> None:
    served, headers = _answer("/os/state.0123456789abcdef.bin.zst", "br")
    assert served == "/os/state.0123456789abcdef.bin.zst"
    assert "content-encoding" not in headers
