"""Debian's stock i386 kernel (``linux-image-686``) and the network modules it needs.

Its drivers are modules, so the bzImage alone cannot reach a network: ne2k-pci (what v86
emulates) and virtio-net over virtio-pci (QEMU's usual card) are copied out of the
package with their dependencies, decompressed, and listed in load order for /init.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from images import debs, modules
from images.bootheader import boot_protocol
from images.errors import ImageError
from images.kernel import KERNEL_FILE, Kernel, is_ready, load, publish
from images.keys import key_of

METAPACKAGE = "linux-image-686"
NETWORK_MODULES = ["ne2k_pci", "virtio_pci", "virtio_net"]
RECIPE_VERSION = 1
"""Bump when this file changes what it extracts, so cached kernels are redone."""


def inputs(store: Path) -> dict:
    """The exact kernel package (version, sha256) apt offers now: the kernel's cache key."""
    return debs.resolve_kernel(METAPACKAGE, store).as_manifest()


def ensure(store: Path, rebuild: bool = False) -> Kernel:
    """The Debian kernel in the cache, downloading and extracting it the first time."""
    package = debs.resolve_kernel(METAPACKAGE, store)
    key = key_of(
        {"deb": package.as_manifest(), "modules": NETWORK_MODULES, "recipe": RECIPE_VERSION}
    )
    folder = store / "kernels" / f"debian-{key}"
    if is_ready(folder) and not rebuild:
        return load(folder, "debian")
    deb = debs.download(package, store / "debs")
    with tempfile.TemporaryDirectory(dir=store) as scratch:
        tree = debs.extract(deb, Path(scratch) / "tree")
        vmlinuz = sorted((tree / "boot").glob("vmlinuz-*"))
        roots = sorted((tree / "lib" / "modules").glob("*"))
        if len(vmlinuz) != 1 or len(roots) != 1:
            raise ImageError(
                f"{deb.name}: expected one /boot/vmlinuz-* and one "
                "/lib/modules/VERSION, found otherwise"
            )
        staging = Path(scratch) / "staging"
        (staging / "modules").mkdir(parents=True)
        shutil.copyfile(vmlinuz[0], staging / KERNEL_FILE)
        boot_protocol(staging / KERNEL_FILE)
        available = modules.index_tree(roots[0])
        order = modules.load_order(NETWORK_MODULES, available)
        for name in order:
            (staging / "modules" / f"{name}.ko").write_bytes(modules.read_module(available[name]))
        facts = {
            "package": package.as_manifest(),
            "release": roots[0].name,
            "modules": order,
        }
        publish(folder, staging, order, facts)
    return load(folder, "debian")
