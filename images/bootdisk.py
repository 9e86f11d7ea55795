"""A BIOS-bootable disk holding an image's kernel, initramfs and command line.

Why: Bochs has no ``-kernel``; its BIOS boots a disk. The disk is a partitionless FAT
volume (made by ``mformat``) with SYSLINUX installed by ``syslinux --install`` on the
image file through mtools, so nothing is mounted and no root is needed. SYSLINUX loads
the very bzImage and initramfs the other engines boot, with the image's command line.

A disk lives in ``<cache>/images/bootdisks/<key>/`` where the key hashes the kernel, the
initramfs, the command line, the SYSLINUX installer (it embeds the boot loader it
writes) and this module; its manifest is written last, so its presence means complete.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Protocol, Tuple

from ground import assets
from ground.cache import cache_dir
from images.errors import ImageError
from images.keys import key_of
from images.lock import exclusive

HEADS = 16
SECTORS_PER_TRACK = 63
CYLINDER_BYTES = HEADS * SECTORS_PER_TRACK * 512
"""The disk is a whole number of cylinders, so the geometry given to the BIOS is exact."""
SLACK_BYTES = 1 << 20
"""Room for the FAT, the root directory, ldlinux.sys/.c32 and cluster rounding."""
DISK = "disk.img"
MANIFEST = "manifest.json"
KERNEL_NAME = "linux"
INITRD_NAME = "initrd"
TOOLS = {"mformat": "mtools", "mcopy": "mtools", "syslinux": "syslinux"}
"""Each host tool and the Debian package that provides it (scripts/apt-packages.txt)."""


class Bootable(Protocol):
    """What the disk is made from (``images.build.BuiltImage`` satisfies it)."""

    kernel: Path
    initrd: Optional[Path]
    cmdline: str


@dataclass(frozen=True)
class BootDisk:
    """A finished disk and the geometry its BIOS must be told."""

    path: Path
    cylinders: int
    heads: int
    sectors_per_track: int
    manifest: dict


def syslinux_config(cmdline: str, has_initrd: bool) -> str:
    """SYSLINUX's configuration: boot the kernel at once, no prompt, no menu."""
    if "\n" in cmdline or "\r" in cmdline:
        raise ImageError("the kernel command line must be one line for SYSLINUX")
    lines = ["DEFAULT linux", "PROMPT 0", "TIMEOUT 0", "LABEL linux",
             f"  KERNEL {KERNEL_NAME}"]
    if has_initrd:
        lines.append(f"  INITRD {INITRD_NAME}")
    lines.append(f"  APPEND {cmdline}")
    return "\n".join(lines) + "\n"


def cylinders_for(payload_bytes: int) -> int:
    """Whole cylinders enough for ``payload_bytes`` of files plus the file system."""
    return -(-(payload_bytes + SLACK_BYTES) // CYLINDER_BYTES)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ImageError(f"{name} not found; install it: apt-get install {TOOLS[name]}")
    return path


def _run(argv: List[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ImageError(f"{Path(argv[0]).name} failed (status {done.returncode})"
                         + (f": {detail[-1]}" if detail else ""))


def write_syslinux_disk(disk: Path, files: List[Tuple[Path, str]], label: str) -> int:
    """Make ``disk``: a FAT file system holding ``files`` (host path, name on the disk;
    one of them ``syslinux.cfg``) with SYSLINUX installed, the volume serial fixed so the
    same files give the same bytes. Returns the cylinder count (geometry: HEADS,
    SECTORS_PER_TRACK)."""
    cylinders = cylinders_for(sum(path.stat().st_size for path, _ in files))
    # -N 0: a fixed volume serial instead of a random one.
    _run([_tool("mformat"), "-i", str(disk), "-C", "-t", str(cylinders),
          "-h", str(HEADS), "-s", str(SECTORS_PER_TRACK), "-N", "0", "-v", label, "::"])
    for source, name in files:
        _run([_tool("mcopy"), "-i", str(disk), str(source), f"::{name}"])
    _run([_tool("syslinux"), "--install", str(disk)])
    return cylinders


def _inputs(image: Bootable) -> Dict[str, object]:
    return {
        "kernel_sha256": assets.sha256_file(image.kernel),
        "initrd_sha256": assets.sha256_file(image.initrd) if image.initrd else None,
        "cmdline": image.cmdline,
        "syslinux_sha256": assets.sha256_file(Path(_tool("syslinux"))),
        "builder_sha256": assets.sha256_file(Path(__file__)),
    }


def _build(folder: Path, image: Bootable, inputs: Dict[str, object]) -> None:
    files = [(image.kernel, KERNEL_NAME)] + ([(image.initrd, INITRD_NAME)]
                                             if image.initrd else [])
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        disk = staging / DISK
        config = staging / "syslinux.cfg"
        config.write_text(syslinux_config(image.cmdline, image.initrd is not None))
        cylinders = write_syslinux_disk(disk, files + [(config, "syslinux.cfg")], "X86LAB")
        config.unlink()
        manifest = {
            "disk": {"file": DISK, **assets.facts(disk)},
            "geometry": {"cylinders": cylinders, "heads": HEADS,
                         "sectors_per_track": SECTORS_PER_TRACK},
            "inputs": inputs,
        }
        assets.publish_folder(staging, folder, MANIFEST, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load(folder: Path) -> Optional[BootDisk]:
    """The cached disk if complete and intact, else None (it will be rebuilt)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        facts, geometry = manifest["disk"], manifest["geometry"]
        if assets.problems(folder, {facts["file"]: facts}):
            return None
        return BootDisk(folder / facts["file"], int(geometry["cylinders"]),
                        int(geometry["heads"]), int(geometry["sectors_per_track"]), manifest)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensure_boot_disk(image: Bootable) -> BootDisk:
    """The boot disk of ``image``, building it if the cache lacks it (or it is damaged)."""
    inputs = _inputs(image)
    store = cache_dir("images") / "bootdisks"
    folder = store / key_of(inputs)
    found = _load(folder)
    if found:
        return found
    store.mkdir(parents=True, exist_ok=True)
    with exclusive(store / ".lock"):
        found = _load(folder)  # another process may have built it while we waited
        if found is None:
            _build(folder, image, inputs)
            found = _load(folder)
    if found is None:
        raise ImageError(f"the boot disk built in {folder} does not match its manifest")
    return found
