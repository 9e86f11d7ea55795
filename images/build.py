"""Build (or find in the cache) a bootable image: a kernel, an initramfs and a manifest.

Others call one function::

    from images.build import ensure_image
    img = ensure_image(kernel="tiny")          # or "debian"; builds if the cache lacks it
    qemu(kernel=img.kernel, initrd=img.initrd, append=img.cmdline)

An image lives in ``<cache>/images/built/<kind>-<key>/`` where the key hashes every input
(package versions and sha256, the kernel's own key, /init, this builder's source and the
user's extras). The manifest is written last, so its presence means the image is complete,
and a second call with the same inputs only reads it.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Sequence

from ground import assets
from ground.cache import cache_dir
from images import cpio, debs, rootfs
from images.bootheader import boot_protocol
from images.errors import ImageError
from images.kernel import Kernel, debian, tiny
from images.keys import files_digest, key_of
from images.lock import exclusive

KERNELS: Dict[str, Callable[..., Kernel]] = {"tiny": tiny.ensure, "debian": debian.ensure}
KERNEL_INPUTS: Dict[str, Callable[[Path], dict]] = {
    "tiny": lambda store: tiny.inputs(),  # a host package: no apt answers needed
    "debian": debian.inputs,
}
"""What each kernel is made from, cheap to compute: part of the image's cache key."""
BASE_CMDLINE = "console=ttyS0 panic=-1"
"""``panic=-1`` reboots at once on a panic, so an emulator run with no-reboot just ends."""
CMDLINES = {
    # pty.legacy_count=0: the tiny kernel keeps CONFIG_LEGACY_PTYS (tinyconfig's default),
    # whose 256 BSD pty pairs cost 53 M of 110 M guest instructions to the prompt on v86
    # (512 devices registered in sysfs and devtmpfs; measured with x86lab boot --engine
    # v86 --json --initcalls); nothing uses them (the shell's ptys are Unix98, devpts).
    "tiny": f"{BASE_CMDLINE} pty.legacy_count=0",
    # cryptomgr.notests: crypto self-tests were 3.7 G of 6.4 G instructions to the prompt;
    # noisapnp: ISA PnP probing busy-waits on the wall clock (notes/linux-boot-costs.md).
    "debian": f"{BASE_CMDLINE} cryptomgr.notests=1 noisapnp",
}
BUSYBOX_PACKAGE = "busybox-static"
DEFAULT_BUDGET = 48 * 1024 * 1024
"""Largest initramfs accepted: it is unpacked into guest RAM (128 MiB in v86 by default)."""
MANIFEST = "manifest.json"
INITRD = "initramfs.cpio"
SCHEMA = 1
NOT_KEYED = ("overlays", "adds")
"""Where extras came from is recorded, but only their contents (extras_sha256) are keyed."""
_HERE = Path(__file__).resolve().parent
BUILDER_SOURCES = (
    _HERE / "build.py",
    _HERE / "cpio.py",
    _HERE / "rootfs.py",
    _HERE / "contract.py",
    rootfs.INIT_TEMPLATE,
    rootfs.UDHCPC_SCRIPT,
    rootfs.GET_SCRIPT,
    rootfs.FSTAB,
)


@dataclass(frozen=True)
class BuiltImage:
    """Paths of a finished image and its manifest (a dict, also saved as JSON)."""

    kernel: Path
    initrd: Path
    cmdline: str
    manifest: dict
    manifest_path: Path
    kernel_kind: str


class DamagedImage(ImageError):
    """A cached image whose files differ from its manifest (rebuilt, not trusted)."""


def _output_facts(path: Path) -> dict:
    return {"file": path.name, **assets.facts(path)}


def _from_manifest(manifest_path: Path, full: bool = False) -> BuiltImage:
    """The cached image, its files checked against the manifest (``full``: every byte
    hashed; else only files that changed since they last hashed correctly)."""
    folder = manifest_path.parent
    try:
        manifest = json.loads(manifest_path.read_text())
        outputs = {manifest[part]["file"]: manifest[part] for part in ("kernel", "initramfs")}
        image = BuiltImage(folder / manifest["kernel"]["file"],
                           folder / manifest["initramfs"]["file"], manifest["cmdline"],
                           manifest, manifest_path, manifest["kind"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DamagedImage(assets.damaged_message(
            "image", folder, [f"{MANIFEST} is unreadable ({exc.__class__.__name__})"])
        ) from None
    if image.kernel.exists():
        assets.own_copy(image.kernel)
    found = assets.problems(folder, outputs, full)
    if found:
        raise DamagedImage(assets.damaged_message("image", folder, found))
    boot_protocol(image.kernel)
    return image


def _busybox(store: Path, package: debs.DebPackage) -> bytes:
    deb = debs.download(package, store / "debs")
    with tempfile.TemporaryDirectory(dir=store) as scratch:
        tree = debs.extract(deb, Path(scratch))
        binary = tree / "bin" / "busybox"
        if not binary.exists():
            raise ImageError(f"{deb.name} has no /bin/busybox")
        return binary.read_bytes()


def initramfs_bytes(
    busybox: bytes, kernel: Kernel, extras: Sequence[cpio.CpioEntry], budget: int
) -> bytes:
    """The uncompressed cpio archive, or ImageError if it is over the memory budget.

    Uncompressed because unpacking gzip costs ~50 M guest instructions, half a tiny boot.
    """
    modules = [(name, path.read_bytes()) for name, path in kernel.modules]
    entries = rootfs.base_entries(busybox) + rootfs.module_entries(
        modules, kernel.facts.get("disk_modules", ())) + list(extras)
    buffer = io.BytesIO()
    size = cpio.write_newc(buffer, entries)
    if size > budget:
        raise ImageError(
            f"initramfs is {size / 2**20:.1f} MiB, over the "
            f"{budget / 2**20:.1f} MiB memory budget; drop overlay files or "
            "raise the budget"
        )
    return buffer.getvalue()


def _build(
    folder: Path,
    store: Path,
    kind: str,
    busybox_pkg: debs.DebPackage,
    extras: Sequence[cpio.CpioEntry],
    inputs: dict,
    budget: int,
    rebuild: bool,
) -> None:
    kernel = KERNELS[kind](store, rebuild=rebuild)
    archive = initramfs_bytes(_busybox(store, busybox_pkg), kernel, extras, budget)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        kernel_copy = staging / "bzImage"
        # A copy, not a hard link: one damaged file must not break every image and the
        # kernel cache at once.
        shutil.copyfile(kernel.bzimage, kernel_copy)
        (staging / INITRD).write_bytes(archive)
        manifest = {
            "schema": SCHEMA,
            "kind": kind,
            "key": folder.name.split("-")[-1],
            "cmdline": CMDLINES[kind],
            "kernel": {
                **_output_facts(kernel_copy),
                "boot_protocol": f"{boot_protocol(kernel_copy):#06x}",
                **kernel.facts,
            },
            "initramfs": {
                **_output_facts(staging / INITRD),
                "compression": "none",
                "budget": budget,
                "modules": [n for n, _ in kernel.modules],
            },
            "packages": {"busybox": busybox_pkg.as_manifest()},
            "inputs": inputs,
        }
        assets.publish_folder(staging, folder, MANIFEST, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure_image(
    kernel: str = "tiny",
    overlays: Sequence[str] = (),
    adds: Sequence[str] = (),
    rebuild: bool = False,
    budget: int = DEFAULT_BUDGET,
    verify_all: bool = False,
) -> BuiltImage:
    """The image for ``kernel`` with the given extras, building whatever the cache lacks.

    ``overlays`` are host folders copied onto the image root; ``adds`` are ``HOST:GUEST``
    paths. Both are part of the cache key. ``rebuild`` redoes the kernel and the image.
    A cached image whose files differ from its manifest is rebuilt (saying so on
    stderr); ``verify_all`` hashes every file instead of trusting unchanged ones.
    """
    if kernel not in KERNELS:
        raise ImageError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    extras = rootfs.user_entries(overlays, adds)
    store = cache_dir("images")
    busybox_pkg = debs.resolve(BUSYBOX_PACKAGE, store)
    inputs = {
        "busybox_sha256": busybox_pkg.sha256,
        "kernel": KERNEL_INPUTS[kernel](store),
        "builder_sha256": files_digest(BUILDER_SOURCES),
        "extras_sha256": rootfs.digest(extras),
        "overlays": list(overlays),
        "adds": list(adds),
        "budget": budget,
    }
    key = key_of({name: value for name, value in inputs.items() if name not in NOT_KEYED})
    folder = store / "built" / f"{kernel}-{key}"
    manifest_path = folder / MANIFEST
    if not rebuild:
        try:
            if manifest_path.exists():
                return _from_manifest(manifest_path, full=verify_all)
        except DamagedImage as exc:
            print(f"x86lab: {exc}; rebuilding it", file=sys.stderr)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # One lock per kernel kind: a tiny kernel compiling for minutes does not hold up a
    # Debian image. What kinds share (the .deb store, apt answers) is written atomically.
    with exclusive(store / f".lock-{kernel}"):
        if rebuild or not _intact(manifest_path):
            _build(folder, store, kernel, busybox_pkg, extras, inputs, budget, rebuild)
    return _from_manifest(manifest_path)


def _intact(manifest_path: Path) -> bool:
    """Whether a complete, undamaged image is there (another process may have built or
    repaired it while we waited for the lock)."""
    try:
        return manifest_path.exists() and bool(_from_manifest(manifest_path))
    except DamagedImage:
        return False
