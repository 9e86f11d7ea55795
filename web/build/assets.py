"""The files under ``os/``: the emulator (from the harness's pinned npm v86, so the page
runs the very build the gate booted), SeaBIOS from Debian, and the image's kernel and
initramfs, each under a content-hashed name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

from harness.engines.v86 import BIOS, PROFILER, VGA_BIOS
from harness.engines.v86 import HERE as V86_ENGINE_DIR
from web.build.errors import BuildError
from web.build.hashing import copy_hashed

V86_PACKAGE = V86_ENGINE_DIR / "node_modules" / "v86"
V86_FILES = {"libv86": ("build/libv86.js", ".js"), "wasm": ("build/v86.wasm", ".wasm")}


def v86_version() -> str:
    """The installed v86's version, e.g. ``0.5.462+g5f9a90f`` (a state file is tied to it)."""
    package = V86_PACKAGE / "package.json"
    if not package.exists():
        raise BuildError(f"v86 is not installed; run: (cd {V86_ENGINE_DIR} && npm ci)")
    return str(json.loads(package.read_text())["version"])


def _copy(source: Path, folder: Path, stem: str, suffix: str, remedy: str) -> dict:
    try:
        return copy_hashed(source, folder, stem, suffix)
    except FileNotFoundError:
        raise BuildError(f"{source} missing; {remedy}") from None


def copy_os_assets(folder: Path, kernel: Path, initrd: Path) -> Dict[str, dict]:
    """Copy everything the page boots into ``folder``; name -> {file, sha256, size}."""
    folder.mkdir(parents=True, exist_ok=True)
    npm_ci = f"run: (cd {V86_ENGINE_DIR} && npm ci)"
    assets = {
        name: _copy(V86_PACKAGE / rel, folder, Path(rel).stem, suffix, npm_ci)
        for name, (rel, suffix) in V86_FILES.items()
    }
    apt = "install it: apt-get install seabios"
    assets["bios"] = _copy(BIOS, folder, "seabios", ".bin", apt)
    assets["vga_bios"] = _copy(VGA_BIOS, folder, "vgabios", ".bin", apt)
    # the same boot profiler as the harness's runner (?profile=1 on the page)
    assets["profiler"] = _copy(PROFILER, folder, "profiler", ".js", "check out the repository")
    rebuild = "rebuild the image: x86lab image build"
    assets["bzimage"] = _copy(kernel, folder, "bzImage", ".bin", rebuild)
    assets["initrd"] = _copy(initrd, folder, "initramfs", ".cpio", rebuild)
    return assets
