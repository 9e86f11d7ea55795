"""The page's saved-state path (components/savedState.js) in Node: every way a state can
be unusable is caught before or while v86 restores it, so the page can boot cold instead.
Files are served by ``web.serve`` on 127.0.0.1; sha256 values come from hashlib."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from harness.engines.v86 import BIOS, NET_DEVICE, VGA_BIOS
from web.build.assets import V86_PACKAGE
from web.build.local import serving

from .nodejs import needs_node, run_module

FETCH_DRIVER = """
const { fetchState } = await import(process.argv[1]);
const base = process.argv[2];
const realFetch = fetch;
globalThis.fetch = (url, options) => realFetch(new URL(url, base), options);
let seen = 0;
try {
  const buffer = await fetchState(JSON.parse(process.argv[3]), (url, n) => { seen = n; });
  const { createHash } = await import("node:crypto");
  const digest = createHash("sha256").update(new Uint8Array(buffer)).digest("hex");
  console.log(JSON.stringify({ sha256: digest, progress: seen }));
} catch (e) {
  console.log(JSON.stringify({ error: e.message }));
}
"""

RESTORE_DRIVER = """
import fs from "node:fs";
const { restoreWhenLoaded } = await import(process.argv[1]);
const config = JSON.parse(process.argv[2]);
const { V86 } = await import(config.v86_module);
const file = (path) => {
  const b = fs.readFileSync(path);
  return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
};
// The page's options for a restore: no boot files, no autostart, the manifest's NIC.
const emulator = new V86({
  wasm_path: config.wasm, memory_size: 128 << 20, vga_memory_size: 2 << 20,
  bios: file(config.bios), vga_bios: file(config.vga_bios), autostart: false,
  net_device: { type: config.nic }, preserve_mac_from_state_image: true,
  disable_keyboard: true, disable_mouse: true, disable_speaker: true,
});
const done = (result) => { console.log(JSON.stringify(result)); process.exit(0); };
restoreWhenLoaded(emulator, file(config.state).buffer, (reason) => done({ failed: reason }));
emulator.add_listener("emulator-started", () => done({ started: true }));
setTimeout(() => done({ hung: true }), 30000);
"""

STATE_SIZE = 200_000
pytestmark = needs_node


@pytest.fixture
def state_site(tmp_path: Path):
    """A folder with os/state.bin (random bytes) served on 127.0.0.1, and its manifest."""
    data = random.Random(5).randbytes(STATE_SIZE)
    (tmp_path / "os").mkdir()
    (tmp_path / "os" / "state.bin").write_bytes(data)
    manifest = {"state": {"file": "state.bin", "size": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()}}
    with serving(tmp_path) as url:
        yield url, tmp_path / "os" / "state.bin", manifest


def _fetch(tmp_path: Path, url: str, manifest: dict) -> dict:
    return run_module("savedState", FETCH_DRIVER, tmp_path, url, json.dumps(manifest))


def test_intact_state_is_returned_whole(tmp_path: Path, state_site) -> None:
    url, path, manifest = state_site
    result = _fetch(tmp_path, url, manifest)
    assert result == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                      "progress": STATE_SIZE}


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[: len(data) // 2], "truncated"),
    (lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:], "sha256"),
    (lambda data: data + b"extra", "longer than"),
    (None, "HTTP 404"),
], ids=["truncated", "one-bit-flipped", "too-long", "missing"])
def test_damaged_or_missing_state_is_refused_with_a_reason(tmp_path: Path, state_site,
                                                           damage, reason: str) -> None:
    url, path, manifest = state_site
    if damage is None:
        path.unlink()
    else:
        path.write_bytes(damage(path.read_bytes()))
    assert reason in _fetch(tmp_path, url, manifest)["error"]


def test_unreachable_host_is_a_download_failure(tmp_path: Path) -> None:
    from web.relay.tests.conftest import closed_port

    manifest = {"state": {"file": "state.bin", "size": 1, "sha256": "0" * 64}}
    result = _fetch(tmp_path, f"http://127.0.0.1:{closed_port()}/", manifest)
    assert "download failed" in result["error"]


@pytest.mark.skipif(not (V86_PACKAGE / "build" / "v86.wasm").exists() or not BIOS.exists(),
                    reason="needs v86 (npm ci in harness/engines/v86) and seabios")
@pytest.mark.parametrize("content", [
    random.Random(9).randbytes(50_000),                      # no state header at all
    bytes.fromhex("28b52ffd") + random.Random(9).randbytes(50_000),  # zstd magic, junk
], ids=["not-a-state", "bad-zstd"])
def test_state_v86_rejects_reports_failure_instead_of_hanging(tmp_path: Path,
                                                              content: bytes) -> None:
    state = tmp_path / "state.bin"
    state.write_bytes(content)
    config = {"v86_module": (V86_PACKAGE / "build" / "libv86.mjs").as_uri(),
              "wasm": str(V86_PACKAGE / "build" / "v86.wasm"), "bios": str(BIOS),
              "vga_bios": str(VGA_BIOS), "nic": NET_DEVICE, "state": str(state)}
    result = run_module("savedState", RESTORE_DRIVER, tmp_path, json.dumps(config))
    assert "v86 could not restore it" in result.get("failed", ""), result
