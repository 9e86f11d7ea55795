"""Put the site together: gate the image, export the front end, copy ``os/``, write the
manifest and ``vercel.json``. The output folder is replaced as a whole, so it never mixes
files from two builds."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from harness.stages import MARKS
from images.contract import DISK_FLAG, PROMPT
from web.build import gate
from web.build.assets import copy_os_assets, v86_version
from web.build.disk import ensure_disk
from web.build.errors import BuildError
from web.build.frontend import (
    early_script_first,
    export_site,
    with_files_hint,
    with_state_hint,
)
from web.build.hashing import copy_hashed
from web.build.headers import MANIFEST_NAME, vercel_config
from web.build.network import NET_DEVICE, check_relay_url
from web.build.precompress import precompress_site
from web.build.site_disk import disk_devices, publish_disk
from web.build.state import ensure_state

SCHEMA = 1
MEMORY_MIB = 128
"""Guest RAM in the page: v86 loads the initrd at 64 MiB, and phones have little memory."""
VGA_MEMORY_MIB = 2
DEVICES = {"serial0": "xterm.js", "keyboard": False, "mouse": False, "speaker": False,
           "net": NET_DEVICE, "disks": []}
"""What the page gives the guest; a saved state is only valid for the same set."""


def _check_out(out: Path) -> None:
    """Refuse to delete a folder that is not ours (a typo in --out must not cost files)."""
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_NAME).exists():
        raise BuildError(f"{out} exists and is not a site build (no {MANIFEST_NAME}); "
                         "give an empty or new folder to --out")


def _ungated() -> dict:
    return {"passed": False, "ungated": True,
            "note": "built with --skip-gate: for development only, do not deploy"}


def build_site(kernel: str = "debian", out: Path = Path("web/out"), skip_gate: bool = False,
               report: Optional[Path] = None, memory_mib: int = MEMORY_MIB,
               with_state: bool = True, with_disk: bool = True,
               relay_url: Optional[str] = None) -> dict:
    """Build the site into ``out`` and return its manifest; BuildError/GateFailed if not.

    ``with_disk``: attach the lazy tools disk (``disk.py``); visitors fetch only what the
    guest reads, so it costs the page a few KiB until used.
    ``relay_url``: the Wisp relay the page uses unless its ``?relay=`` says otherwise.
    """
    from images.build import ensure_image
    from images.errors import ImageError

    _check_out(out)
    relay_url = check_relay_url(relay_url)
    try:
        image = ensure_image(kernel=kernel)
    except ImageError as exc:
        raise BuildError(f"cannot build the {kernel} image: {exc}") from None
    version = v86_version()
    kernel_sha = image.manifest["kernel"]["sha256"]
    initrd_sha = image.manifest["initramfs"]["sha256"]
    key = gate.gate_key(kernel_sha, initrd_sha, version, memory_mib)
    verdict = _ungated() if skip_gate else gate.require_pass(image, kernel, key, memory_mib,
                                                             report)
    disk = ensure_disk() if with_disk else None
    devices = {**DEVICES, "disks": disk_devices(disk.sha256, disk.size) if disk else []}
    # the disk's drivers are loaded by /init only when asked (images/contract.py)
    cmdline = f"{image.cmdline} {DISK_FLAG}" if disk else image.cmdline
    state = (ensure_state(key, image.kernel, image.initrd, cmdline, memory_mib,
                          VGA_MEMORY_MIB, disk.path if disk else None,
                          disk.sha256 if disk else "")
             if with_state else None)
    export = export_site()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        site = staging / "site"
        shutil.copytree(export, site)
        assets = copy_os_assets(site / "os", image.kernel, image.initrd)
        manifest = {
            "schema": SCHEMA, "kernel_kind": kernel, "cmdline": cmdline,
            "image_key": image.manifest.get("key", ""),
            "kernel_sha256": kernel_sha, "initrd_sha256": initrd_sha,
            "v86_version": version, "memory_mib": memory_mib,
            "vga_memory_mib": VGA_MEMORY_MIB, "devices": devices,
            "stages": [[name, pattern.decode()] for name, pattern in MARKS],
            "prompt": PROMPT, "assets": assets, "gate": verdict, "relay_url": relay_url,
        }
        if state is not None:
            manifest["state"] = {
                **copy_hashed(state, site / "os", "state", ".bin.zst"),
                "v86_version": version, "memory_mib": memory_mib,
                "vga_memory_mib": VGA_MEMORY_MIB, "devices": devices,
                "kernel_sha256": kernel_sha, "initrd_sha256": initrd_sha,
            }
        if disk is not None:
            manifest["disk"] = publish_disk(disk, site / "os")
        (site / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
        for page in site.glob("*.html"):
            html = with_state_hint(early_script_first(page.read_text()), manifest.get("state"))
            disk_file = {"disk": {"file": manifest["disk"]["file"]}} if disk is not None else {}
            page.write_text(with_files_hint(html, {**assets, **disk_file}))
        siblings = precompress_site(site)
        brotli = [s["file"][: -len(".br")] for s in siblings if s["encoding"] == "br"]
        (site / "vercel.json").write_text(json.dumps(vercel_config(brotli), indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        site.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
