"""What goes into the initramfs: BusyBox, /init, device nodes, modules, user extras.

Everything is turned into cpio entries in memory (a few MiB), so the archive's bytes
depend only on these inputs; ``images.cpio`` then fixes order, owners and times.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Collection, Iterable, List, Sequence, Tuple

from images import contract
from images.cpio import CpioEntry
from images.errors import ImageError

INIT_TEMPLATE = Path(__file__).resolve().parent / "rootfs" / "init"
UDHCPC_SCRIPT = INIT_TEMPLATE.with_name("udhcpc.script")
UDHCPC_SCRIPT_PATH = "etc/udhcpc/default.script"
"""Where Debian's BusyBox udhcpc looks for its lease hook by default (upstream BusyBox
uses /usr/share/udhcpc/; the string is in the binary)."""
FSTAB = INIT_TEMPLATE.with_name("fstab")
"""The file systems /init mounts with one ``mount -a``."""
GET_SCRIPT = INIT_TEMPLATE.with_name("x86lab-get")
"""Installs .debs from a repository over the network (`x86lab relay --repo`); see its head."""
MODULE_DIR = "lib/modules"
LOAD_ORDER = f"{MODULE_DIR}/load-order"
DISK_LOAD_ORDER = f"{MODULE_DIR}/load-order-disk"
BASE_DIRS = (
    "bin",
    "sbin",
    "usr",
    "usr/bin",
    "usr/sbin",
    "dev",
    "proc",
    "sys",
    "tmp",
    "root",
    "etc",
    "etc/init.d",
    "etc/udhcpc",
    "lib",
    MODULE_DIR,
    "mnt",
    "var",
)


def render_init(template: str) -> str:
    """The /init script with the contract's values in place of its @NAME@ placeholders."""
    values = {
        "BOOT_MARKER": contract.BOOT_MARKER,
        "PROMPT": contract.PROMPT,
        "HOSTNAME": contract.HOSTNAME,
        "CONSOLE": contract.SERIAL_CONSOLE,
        "DISK_FLAG": contract.DISK_FLAG,
        "DISK_MOUNT": contract.DISK_MOUNT,
    }
    text = template
    for name, value in values.items():
        if "'" in value:
            raise ImageError(f"contract.{name} must not contain a single quote: {value!r}")
        text = text.replace(f"@{name}@", value)
    if "@" in "".join(line for line in text.splitlines() if not line.startswith("#")):
        raise ImageError(f"{INIT_TEMPLATE}: a placeholder has no value in images/contract.py")
    return text


def base_entries(busybox: bytes) -> List[CpioEntry]:
    """The skeleton every image has: folders, BusyBox with sh, /init, the console node and
    udhcpc's lease script (udhcpc alone configures nothing).

    /dev/console must exist before devtmpfs is mounted: the kernel opens it for /init's
    standard streams. The other BusyBox applets are linked by /init itself
    (``busybox --install -s``, in the background once the prompt is up: the shell runs
    applets without links), which needs no host that can run i386 binaries.
    """
    entries = [CpioEntry.directory(path) for path in BASE_DIRS]
    entries += [
        CpioEntry.file("bin/busybox", busybox, 0o755),
        CpioEntry.symlink("bin/sh", "busybox"),
        CpioEntry.file("init", render_init(INIT_TEMPLATE.read_text()).encode(), 0o755),
        CpioEntry.char_device("dev/console", 5, 1),
        CpioEntry.char_device("dev/null", 1, 3, 0o666),
        CpioEntry.file("etc/hostname", f"{contract.HOSTNAME}\n".encode()),
        CpioEntry.file("etc/fstab", FSTAB.read_bytes()),
        CpioEntry.file(UDHCPC_SCRIPT_PATH, UDHCPC_SCRIPT.read_bytes(), 0o755),
        CpioEntry.file("usr/bin/x86lab-get", GET_SCRIPT.read_bytes(), 0o755),
    ]
    return entries


def module_entries(modules: Sequence[Tuple[str, bytes]],
                   disk_only: Collection[str] = ()) -> List[CpioEntry]:
    """Kernel modules as /lib/modules/NAME.ko plus the load-order lists /init reads: the
    ones always loaded, and ``disk_only`` ones loaded only when the command line asks for
    the disk (contract.DISK_FLAG). Both lists keep the given (dependency) order."""
    entries = [CpioEntry.file(f"{MODULE_DIR}/{name}.ko", data) for name, data in modules]
    for path, wanted in ((LOAD_ORDER, False), (DISK_LOAD_ORDER, True)):
        order = "".join(f"{name}.ko\n" for name, _ in modules if (name in disk_only) == wanted)
        if order:
            entries.append(CpioEntry.file(path, order.encode()))
    return entries


def _tree_entries(host: Path, guest: str) -> Iterable[CpioEntry]:
    """A host file, symlink or folder (recursively) placed at ``guest`` in the image."""
    info = host.lstat()
    perm = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        yield CpioEntry.symlink(guest, os.readlink(host))
    elif stat.S_ISDIR(info.st_mode):
        if guest:
            yield CpioEntry.directory(guest, perm)
        for child in sorted(host.iterdir()):
            yield from _tree_entries(child, f"{guest}/{child.name}".lstrip("/"))
    elif stat.S_ISREG(info.st_mode):
        yield CpioEntry.file(guest, host.read_bytes(), perm)
    else:
        raise ImageError(f"{host}: only files, folders and symlinks can go into the image")


def overlay_entries(overlays: Sequence[str]) -> List[CpioEntry]:
    """The contents of each overlay folder, placed at the image root."""
    entries: List[CpioEntry] = []
    for folder in overlays:
        path = Path(folder)
        if not path.is_dir():
            raise ImageError(f"--overlay {folder}: not a folder")
        entries.extend(_tree_entries(path, ""))
    return entries


def _guest_parts(spec: str, guest: str) -> List[str]:
    """The guest path's names, refused unless the archive can hold them as a plain path:
    ``.`` and ``..`` would name another place than the one written (cpio refuses them),
    and the name must be UTF-8 text without NUL (the archive stores it NUL-terminated)."""
    parts = [part for part in guest.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ImageError(f"--add {spec!r}: the guest path may not contain '.' or '..'; "
                         "write it in full, e.g. /usr/bin/tool")
    try:
        guest.encode("utf-8")
    except UnicodeEncodeError:
        raise ImageError(f"--add {spec!r}: the guest path is not UTF-8 text") from None
    if "\0" in guest:
        raise ImageError(f"--add {spec!r}: the guest path contains a NUL byte")
    return parts


def _host_exists(host: str) -> bool:
    try:
        return Path(host).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def parse_add(spec: str) -> Tuple[Path, str]:
    """``HOST:GUEST`` -> (host path, guest path without leading or doubled slashes)."""
    host, sep, guest = spec.rpartition(":")
    if not sep or not host or not guest.startswith("/") or guest.strip("/") == "":
        raise ImageError(
            f"--add {spec!r}: expected HOST:GUEST with an absolute guest path, "
            "e.g. ./tool:/usr/bin/tool"
        )
    parts = _guest_parts(spec, guest)
    if not _host_exists(host):
        raise ImageError(f"--add {spec!r}: host path {host!r} does not exist")
    return Path(host), "/".join(parts)


def add_entries(adds: Sequence[str]) -> List[CpioEntry]:
    """Each ``HOST:GUEST`` file or folder, with the guest path's parent folders."""
    entries: List[CpioEntry] = []
    for spec in adds:
        host, guest = parse_add(spec)
        parts = guest.split("/")
        entries.extend(CpioEntry.directory("/".join(parts[:i])) for i in range(1, len(parts)))
        entries.extend(_tree_entries(host, guest))
    return entries


def digest(entries: Iterable[CpioEntry]) -> str:
    """A sha256 over entries' paths, modes and contents: the cache key of user extras."""
    hasher = hashlib.sha256()
    for entry in entries:
        for part in (entry.path.encode(), b"%o" % entry.mode, entry.data):
            hasher.update(b"%d:" % len(part) + part)
    return hasher.hexdigest()


def user_entries(overlays: Sequence[str], adds: Sequence[str]) -> List[CpioEntry]:
    """Overlays first, then ``--add`` files, so an --add wins over an overlay's file."""
    return overlay_entries(overlays) + add_entries(adds)
