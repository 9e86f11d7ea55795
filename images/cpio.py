"""A reproducible writer for the cpio "newc" format the Linux kernel unpacks as initramfs.

Why our own writer rather than ``find | cpio -o``: the host's cpio copies owners, modes
and mtimes from the build machine and orders entries as the filesystem lists them, so two
builds of the same inputs differ. Here every entry is owned by root, carries one fixed
mtime and is written in sorted path order, so the same inputs always give the same bytes
(and the same sha256). Device nodes (``/dev/console``) can be written without root.

Format (see the kernel's Documentation/driver-api/early-userspace/buffer-format.rst):
each entry is a 110-byte ASCII header (magic ``070701`` and 13 eight-digit hex fields),
the NUL-terminated name, padding to 4 bytes, the data, padding to 4 bytes; the archive
ends with an entry named ``TRAILER!!!``.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import BinaryIO, Iterable, List

NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"
FIXED_MTIME = 0
"""Every entry's mtime: the epoch, so the archive does not depend on when it was built."""


@dataclass(frozen=True)
class CpioEntry:
    """One file, directory, symlink or device node of the archive.

    ``path`` is relative to the archive root, without a leading slash (``bin/busybox``).
    For a symlink ``data`` holds the target; for a device node ``rdev`` is (major, minor).
    """

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple = (0, 0)

    @staticmethod
    def directory(path: str, perm: int = 0o755) -> CpioEntry:
        return CpioEntry(path, stat.S_IFDIR | perm)

    @staticmethod
    def file(path: str, data: bytes, perm: int = 0o644) -> CpioEntry:
        return CpioEntry(path, stat.S_IFREG | perm, data)

    @staticmethod
    def symlink(path: str, target: str) -> CpioEntry:
        return CpioEntry(path, stat.S_IFLNK | 0o777, target.encode())

    @staticmethod
    def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> CpioEntry:
        return CpioEntry(path, stat.S_IFCHR | perm, rdev=(major, minor))


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(ino: int, entry: CpioEntry, nlink: int) -> bytes:
    name = entry.path.encode() + b"\0"
    fields = (
        ino,
        entry.mode,
        0,  # uid: root
        0,  # gid: root
        nlink,
        FIXED_MTIME,
        len(entry.data),
        0,  # devmajor of the archive's own filesystem: meaningless here
        0,  # devminor
        entry.rdev[0],
        entry.rdev[1],
        len(name),
        0,  # check: unused by newc
    )
    text = NEWC_MAGIC + b"".join(b"%08X" % value for value in fields)
    return text + name + _pad4(len(text) + len(name))


def normalise(entries: Iterable[CpioEntry]) -> List[CpioEntry]:
    """Sorted by path, later entries replacing earlier ones with the same path.

    Replacement is what lets an overlay change a file of the base image; sorting puts
    every directory before its contents (``a`` < ``a/b``), which the kernel needs.
    """
    by_path = {}
    for entry in entries:
        path = entry.path.strip("/")
        if not path or path in (".", TRAILER) or ".." in path.split("/"):
            raise ValueError(f"cpio entry path {entry.path!r} is not a plain relative path")
        by_path[path] = CpioEntry(path, entry.mode, entry.data, entry.rdev)
    return [by_path[path] for path in sorted(by_path, key=lambda p: p.split("/"))]


def write_newc(out: BinaryIO, entries: Iterable[CpioEntry]) -> int:
    """Write a whole archive; returns the number of bytes written."""
    written = 0
    ordered = normalise(entries)
    for ino, entry in enumerate(ordered, start=1):
        nlink = 2 if stat.S_ISDIR(entry.mode) else 1
        chunk = _header(ino, entry, nlink) + entry.data + _pad4(len(entry.data))
        out.write(chunk)
        written += len(chunk)
    trailer = _header(0, CpioEntry(TRAILER, 0), 1)
    out.write(trailer)
    written += len(trailer)
    # The kernel accepts any length, but block-aligned archives concatenate cleanly.
    tail = b"\0" * (-written % 512)
    out.write(tail)
    return written + len(tail)


def read_newc(data: bytes) -> List[CpioEntry]:
    """The entries of a newc archive, in archive order, up to its trailer: the reader
    beside the writer, for tools that look inside a built initramfs (which file a page of
    a saved guest's memory came from). ValueError on anything that is not newc."""
    entries = []
    offset = 0
    while True:
        header = data[offset:offset + 110]
        if len(header) < 110 or header[:6] != NEWC_MAGIC:
            raise ValueError(f"no newc header at byte {offset} (truncated or not a newc "
                             "cpio archive)")
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev_major, rdev_minor, name_size = (fields[1], fields[6], fields[9],
                                                         fields[10], fields[11])
        name_end = offset + 110 + name_size
        name = data[offset + 110:name_end - 1].decode()
        start = name_end + (-name_end % 4)
        if name == TRAILER:
            return entries
        if start + size > len(data):
            raise ValueError(f"{name}: {size} bytes announced, the archive ends first")
        entries.append(CpioEntry(name, mode, data[start:start + size],
                                 (rdev_major, rdev_minor)))
        offset = start + size + (-(start + size) % 4)
