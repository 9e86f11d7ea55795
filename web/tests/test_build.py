"""The site assembler without a browser: hashed names, the gate's verdicts, the headers
in vercel.json, and refusing to overwrite a folder that is not a site build."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from web.build import gate
from web.build.assemble import build_site
from web.build.errors import BuildError, GateFailed
from web.build.frontend import early_script_first, with_files_hint, with_state_hint
from web.build.hashing import copy_hashed
from web.build.headers import MANIFEST_NAME, vercel_config


def test_copy_hashed_names_the_file_by_its_sha256(tmp_path: Path) -> None:
    source = tmp_path / "blob"
    source.write_bytes(b"v86 wasm bytes")
    (tmp_path / "os").mkdir()
    facts = copy_hashed(source, tmp_path / "os", "v86", ".wasm")
    expected = hashlib.sha256(b"v86 wasm bytes").hexdigest()
    assert facts == {"file": f"v86.{expected[:16]}.wasm", "sha256": expected, "size": 14}
    assert (tmp_path / "os" / facts["file"]).read_bytes() == b"v86 wasm bytes"


def test_early_script_runs_before_the_stylesheet_blocks_it() -> None:
    head = ('<head><meta charSet="utf-8"/><link rel="stylesheet" href="/a.css"/>'
            '<script src="/chunk.js" async=""></script>')
    early = "<script>(function () { window.__x86labEarly = {}; })();</script>"
    page = f"<!DOCTYPE html><html>{head}{early}</head><body><script>self.x=1</script></body>"
    moved = early_script_first(page)
    assert moved == ('<!DOCTYPE html><html><head><meta charSet="utf-8"/>' + early +
                     '<link rel="stylesheet" href="/a.css"/><script src="/chunk.js" async="">'
                     "</script></head><body><script>self.x=1</script></body>")
    assert early_script_first(moved) == moved  # already first: unchanged
    assert early_script_first(page.replace(early, "")) == page.replace(early, "")


def test_state_hint_precedes_the_early_script() -> None:
    early = "<script>(function () { window.__x86labEarly = {}; })();</script>"
    page = f"<html><head>{early}</head><body></body></html>"
    state = {"file": "state.0123456789abcdef.bin.zst", "size": 7, "sha256": "ab" * 32,
             "v86_version": "x"}
    hinted = with_state_hint(page, state)
    hint = ('<script id="x86lab-state" type="application/json">{"file": '
            '"state.0123456789abcdef.bin.zst", "size": 7, "sha256": "' + "ab" * 32 + '"}'
            "</script>")
    assert hinted == f"<html><head>{hint}{early}</head><body></body></html>"
    # a name cannot close the script early; no state or no early script: unchanged
    assert "</x" not in with_state_hint(page, {**state, "file": "</x"}).split(early)[0]
    assert with_state_hint(page, None) == page
    assert with_state_hint("<html><head></head></html>", state) == "<html><head></head></html>"



def test_files_hint_names_v86_the_cold_boot_files_and_the_disk_before_the_early_script(
) -> None:
    early = "<script>(function () { window.__x86labEarly = {}; })();</script>"
    page = f"<html><head>{early}</head><body></body></html>"
    assets = {"libv86": {"file": "libv86.1.js", "size": 1}, "wasm": {"file": "v86.2.wasm"},
              "vga_bios": {"file": "vgabios.3.bin"}, "bios": {"file": "seabios.4.bin"},
              "bzimage": {"file": "bzImage.5.bin"}, "initrd": {"file": "initramfs.6.cpio"},
              "profiler": {"file": "profiler.7.js"}, "disk": {"file": "rootdisk.8.img"}}
    hint = ('<script id="x86lab-files" type="application/json">{"libv86": "libv86.1.js", '
            '"wasm": "v86.2.wasm", "profiler": "profiler.7.js", "bios": "seabios.4.bin", '
            '"bzimage": "bzImage.5.bin", "initrd": "initramfs.6.cpio", '
            '"disk": "rootdisk.8.img"}</script>')
    assert with_files_hint(page, assets) == f"<html><head>{hint}{early}</head><body></body></html>"
    # the page never needs the VGA BIOS; a name cannot close the script; no script: unchanged
    assert "</x" not in with_files_hint(page, {"wasm": {"file": "</x"}}).split(early)[0]
    assert with_files_hint("<html><head></head></html>", assets) == "<html><head></head></html>"

def _headers_for(path: str) -> dict:
    """What a host applying vercel.json's rules in order would send for ``path`` (the
    sources used here are plain regular expressions to path-to-regexp too)."""
    sent: dict = {}
    for rule in vercel_config()["headers"]:
        if re.fullmatch(rule["source"], path):
            sent.update({h["key"].lower(): h["value"] for h in rule["headers"]})
    return sent


@pytest.mark.parametrize("path, key, value", [
    # v86 sends both request headers; a preflight refusing them makes it retry forever.
    ("/os/v86.0123456789abcdef.wasm", "access-control-allow-headers",
     "range, x-accept-encoding"),
    ("/os/v86.0123456789abcdef.wasm", "content-type", "application/wasm"),
    ("/os/v86.0123456789abcdef.wasm", "cache-control", "public, max-age=31536000, immutable"),
    ("/_next/static/chunks/117-632973ba55688f62.js", "cache-control",
     "public, max-age=31536000, immutable"),
    ("/" + MANIFEST_NAME, "cache-control", "public, max-age=0, must-revalidate"),
    ("/" + MANIFEST_NAME, "access-control-allow-origin", "*"),
], ids=["cors-range", "wasm-type", "os-immutable", "next-immutable", "manifest-fresh",
        "manifest-cors"])
def test_vercel_headers(path: str, key: str, value: str) -> None:
    assert _headers_for(path).get(key) == value


def test_index_page_is_not_cached_for_a_year() -> None:
    assert "immutable" not in _headers_for("/index.html").get("cache-control", "")


def _report(tmp_path: Path, passed: bool, key: str = "k1") -> Path:
    run = {"engine": "v86", "kernel": "debian", "memory_mib": 128, "boot": "ok",
           "warnings": [], "image": {"key": key},
           "checks": [{"name": "machine", "passed": True},
                      {"name": "dd_pipe", "passed": passed}]}
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"runs": [run]}))
    return path


def test_gate_accepts_a_passing_report_of_the_same_image(tmp_path: Path) -> None:
    record = gate.from_report(_report(tmp_path, True), "k1", 128)
    assert record["passed"] and record["checks"] == ["machine", "dd_pipe"]


@pytest.mark.parametrize("passed, key, memory", [(False, "k1", 128), (True, "other", 128),
                                                 (True, "k1", 256)],
                         ids=["failed-check", "other-image", "other-memory"])
def test_gate_refuses_report(tmp_path: Path, passed: bool, key: str, memory: int) -> None:
    with pytest.raises(GateFailed):
        gate.from_report(_report(tmp_path, passed), key if key == "other" else "k1", memory)


def test_build_refuses_to_replace_a_folder_that_is_not_a_site(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(BuildError, match="not a site build"):
        build_site(out=tmp_path, skip_gate=True)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_build_refuses_an_image_that_failed_the_harness(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    kernel, initrd = tmp_path / "bzImage", tmp_path / "initrd"
    kernel.write_bytes(b"kernel")
    initrd.write_bytes(b"initrd")
    image = SimpleNamespace(
        kernel=kernel, initrd=initrd, cmdline="console=ttyS0",
        manifest={"key": "k", "kernel": {"sha256": hashlib.sha256(b"kernel").hexdigest()},
                  "initramfs": {"sha256": hashlib.sha256(b"initrd").hexdigest()}})

    def failing(image: object, kernel: str, memory_mib: int) -> dict:
        raise GateFailed("checks ['dd_pipe']")

    monkeypatch.setattr("images.build.ensure_image", lambda kernel: image)
    monkeypatch.setattr(gate, "_boot_and_check", failing)
    monkeypatch.setattr(gate, "cache_dir", lambda part: tmp_path / "cache" / part)
    with pytest.raises(GateFailed):
        build_site(out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_build_into_a_foreign_folder_is_a_usage_error(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture
                                                          ) -> None:
    from x86lab.cli import main

    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["web", "build", "--out", str(tmp_path), "--skip-gate"]) == 2
    assert "not a site build" in capsys.readouterr().err


def test_cli_build_refused_by_the_gate_exits_1(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    from x86lab.cli import main

    def refused(**kwargs: object) -> dict:
        raise GateFailed("the image failed the harness on v86: checks ['dd_pipe']")

    monkeypatch.setattr("web.build.assemble.build_site", refused)
    assert main(["web", "build", "--out", str(tmp_path / "out")]) == 1
    assert "refused" in capsys.readouterr().err
