"""Publish the tools disk into the site: one content-hashed image for hosts that honour
HTTP Range, and the same bytes cut into fixed-size chunk files for hosts that do not.

The chunk names follow v86's ``use_parts`` convention (``AsyncXHRPartfileBuffer``): for a
disk URL ``os/rootdisk.HASH.img`` and chunk size C, chunk k is
``os/rootdisk.HASH-{k*C}-{(k+1)*C}.img``. The page picks one of the two at load time
(``components/lazyDisk.js``), so both must hold identical bytes.
"""

from __future__ import annotations

from pathlib import Path

from images.contract import DISK_MOUNT
from web.build.disk import DiskImage
from web.build.hashing import copy_hashed

CHUNK_SIZE = 256 << 10
"""Per chunk: one request; Linux reads ahead 128 KiB anyway, and 64 MiB makes 256 files."""
SUFFIX = ".img"
MOUNT_POINT = DISK_MOUNT


def chunk_name(disk_file: str, start: int, chunk_size: int = CHUNK_SIZE) -> str:
    """``rootdisk.HASH.img``, 262144 -> ``rootdisk.HASH-262144-524288.img`` (v86's name)."""
    stem = disk_file[: -len(SUFFIX)]
    return f"{stem}-{start}-{start + chunk_size}{SUFFIX}"


def publish_disk(disk: DiskImage, folder: Path) -> dict:
    """Copy the disk and its chunks into ``folder``; the manifest's ``disk`` entry."""
    if disk.size % CHUNK_SIZE:
        raise ValueError(f"disk size {disk.size} is not a multiple of {CHUNK_SIZE}")
    entry = copy_hashed(disk.path, folder, "rootdisk", SUFFIX)
    with disk.path.open("rb") as source:
        for start in range(0, disk.size, CHUNK_SIZE):
            (folder / chunk_name(entry["file"], start)).write_bytes(source.read(CHUNK_SIZE))
    return {**entry, "chunk_size": CHUNK_SIZE, "chunks": disk.size // CHUNK_SIZE,
            "mount": MOUNT_POINT, "test_file": disk.facts["test_file"],
            "tools": disk.facts["tools"]}


def disk_devices(sha256: str, size: int) -> list:
    """The manifest's ``devices.disks``: what a saved state must have been made with."""
    return [{"ide": "hda", "sha256": sha256, "size": size}]
