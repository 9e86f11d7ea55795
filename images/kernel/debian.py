"""Debian's stock i386 kernel (``linux-image-686``) and the network and disk modules it needs.

Its drivers are modules, so the bzImage alone cannot reach a network: ne2k-pci (what v86
emulates) and virtio-net over virtio-pci (QEMU's usual card) are copied out of the
package with their dependencies, decompressed, and listed in load order for /init. So are
the IDE disk (ata_piix, which drives the PIIX3 IDE function v86 and QEMU both emulate;
sd_mod for the disk node) and ext4, which Debian uses to mount ext2 too
(CONFIG_EXT4_USE_FOR_EXT2): the web demo's lazily loaded root disk is ext2.
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
DISK_MODULES = ["ata_piix", "sd_mod", "crc32c_generic", "ext4"]
"""ext4 refuses to mount without a crc32c driver (even ext2, which has no checksums), and
/init has no modprobe to fetch it on demand: crc32c_generic is loaded before it."""
MODULES = NETWORK_MODULES + DISK_MODULES
RECIPE_VERSION = 3
"""Bump when this file changes what it extracts, so cached kernels are redone."""


def inputs(store: Path) -> dict:
    """The exact kernel package apt offers now, the modules taken and this recipe's version.

    Part of the image's cache key, so changing the module list rebuilds the images too.
    """
    facts = debs.resolve_kernel(METAPACKAGE, store).as_manifest()
    return {**facts, "modules": MODULES, "recipe": RECIPE_VERSION}


def ensure(store: Path, rebuild: bool = False) -> Kernel:
    """The Debian kernel in the cache, downloading and extracting it the first time."""
    package = debs.resolve_kernel(METAPACKAGE, store)
    key = key_of(
        {"deb": package.as_manifest(), "modules": MODULES, "recipe": RECIPE_VERSION}
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
        order = modules.load_order(MODULES, available)
        network = set(modules.load_order(NETWORK_MODULES, available))
        for name in order:
            (staging / "modules" / f"{name}.ko").write_bytes(modules.read_module(available[name]))
        facts = {
            "package": package.as_manifest(),
            "release": roots[0].name,
            "modules": order,
            # loaded by /init only when the command line has contract.DISK_FLAG
            "disk_modules": [name for name in order if name not in network],
        }
        publish(folder, staging, order, facts)
    return load(folder, "debian")
