"""The ``tiny`` kernel: Debian's linux-source-6.1 built with our config fragment.

tinyconfig plus only what the harness needs (serial console, initramfs, BusyBox's
syscalls, proc/sys/devtmpfs/tmpfs, ext2, PCI, ne2k-pci, virtio-net) boots in about a
twentieth of the Debian kernel's instructions, which matters on slow emulators. The build
runs in the cache (about 1.5 GB while it runs; removed afterwards), never in the repo.

One driver is a module: ata_piix, the web demo's disk (``DISK_MODULES``), which /init
loads in the background only when the command line asks for the disk, since its probe
would otherwise hold up /init (tiny.config says why).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

from images import debs, kconfig, modules
from images.bootheader import boot_protocol
from images.errors import ImageError
from images.kernel import KERNEL_FILE, Kernel, is_ready, load, publish
from images.keys import files_digest, key_of

HERE = Path(__file__).resolve().parent
FRAGMENT = HERE / "tiny.config"
STORED_LZ4 = HERE / "lz4_stored.py"
"""The kernel's LZ4 compressor replaced by stored blocks (its docstring says why)."""
SOURCE_PACKAGE = "linux-source-6.1"
SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
TOOLS = {
    "make": "make",
    "gcc": "gcc",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
    "perl": "perl",
}
"""Programs the kernel build runs -> the Debian package that provides each."""
REPRODUCIBLE_ENV = {
    "KBUILD_BUILD_TIMESTAMP": "1970-01-01",
    "KBUILD_BUILD_USER": "x86lab",
    "KBUILD_BUILD_HOST": "x86lab",
    "ARCH": "i386",
}
"""Fixed values for what the kernel would otherwise stamp from the build machine."""
JOBS = min(2, os.cpu_count() or 1)
DISK_MODULES = ["ata_piix"]
"""Built as modules (tiny.config) and loaded by /init only for the disk, as the Debian
kernel's disk modules are; libata, SCSI and sd, which they need, are built in."""


def inputs() -> dict:
    """What the tiny kernel is made from: source version, fragment and this recipe."""
    version = debs.installed_version(SOURCE_PACKAGE)
    if not SOURCE_TARBALL.exists():
        raise ImageError(
            f"{SOURCE_TARBALL} is missing; reinstall it with: "
            f"apt-get install --reinstall {SOURCE_PACKAGE}"
        )
    recipe = files_digest([FRAGMENT, Path(__file__), HERE.parent / "kconfig.py",
                           HERE.parent / "modules.py", STORED_LZ4])
    return {
        "source": {
            "name": SOURCE_PACKAGE,
            "version": version,
            "size": SOURCE_TARBALL.stat().st_size,
        },
        "recipe_sha256": recipe,
    }


def _run_step(command: List[str], cwd: Path, log: Path) -> None:
    """Run one build step, appending to ``log``; ImageError with the log's tail if it fails."""
    with open(log, "a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        env = {**os.environ, **REPRODUCIBLE_ENV}
        result = subprocess.run(
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:]
        raise ImageError(
            f"kernel build step '{' '.join(command)}' failed: "
            f"{tail[0] if tail else ''} (full log: {log})"
        )


def check_tools() -> None:
    missing = sorted({package for tool, package in TOOLS.items() if not shutil.which(tool)})
    if missing:
        raise ImageError(
            f"building the tiny kernel needs {', '.join(missing)}; install with: "
            f"apt-get install {' '.join(missing)} (or run scripts/setup.sh)"
        )


def configure(tree: Path, log: Path) -> str:
    """tinyconfig + fragment + olddefconfig; returns the final .config after checking it."""
    _run_step(["make", "tinyconfig"], tree, log)
    _run_step(["scripts/kconfig/merge_config.sh", "-m", ".config", str(FRAGMENT)], tree, log)
    _run_step(["make", "olddefconfig"], tree, log)
    return checked_config(tree)


def checked_config(tree: Path) -> str:
    """The tree's .config, if it sets every fragment option as asked; ImageError if not."""
    final = (tree / ".config").read_text()
    problems = kconfig.mismatches(kconfig.parse(FRAGMENT.read_text()), kconfig.parse(final))
    if problems:
        raise ImageError(
            f"{FRAGMENT.name}: Kconfig did not honour {len(problems)} option(s) "
            f"(missing dependency?): {'; '.join(problems)}"
        )
    return final


def prepared_tree(build: Path, log: Path) -> Path:
    """A configured source tree in ``build``, reusing what an interrupted build left there.

    On a busy machine the compile can take far longer than a caller's timeout; keeping
    the tree between attempts lets ``make`` carry on where the last attempt stopped.
    Stamp files mark the finished steps, so a half-extracted tree is started afresh.
    """
    tree = build / "linux"
    if not (build / "extracted").exists():
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        _run_step(["tar", "-xf", str(SOURCE_TARBALL), "-C", str(build)], build, log)
        next(build.glob("linux-source-*")).rename(tree)
        (build / "extracted").write_text("")
    if not (build / "configured").exists():
        configure(tree, log)
        (build / "configured").write_text("")
    return tree


def ensure(store: Path, rebuild: bool = False) -> Kernel:
    """The tiny kernel in the cache, building it (minutes; resumable) the first time.

    Callers hold the per-kind build lock, so the build folder is theirs alone.
    """
    facts = inputs()
    key = key_of(facts)
    folder = store / "kernels" / f"tiny-{key}"
    if is_ready(folder) and not rebuild:
        return load(folder, "tiny")
    check_tools()
    build = store / "kernels" / f"tiny-{key}.build"
    log = store / "kernels" / f"tiny-{key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if rebuild:
        shutil.rmtree(build, ignore_errors=True)
    with open(log, "a") as out:
        out.write(f"--- {'rebuild' if rebuild else 'build'} attempt ---\n")
    tree = prepared_tree(build, log)
    config = checked_config(tree)
    print(f"x86lab: building the tiny kernel, {JOBS} jobs (log: {log})", file=sys.stderr)
    # The payload in stored LZ4 blocks: the site's brotli compresses the plain kernel to
    # ~1.40 MB against 1.64 MB over LZ4 -9, and the decompressor only copies it.
    _run_step(["make", f"-j{JOBS}", f"LZ4={sys.executable} {STORED_LZ4}", "bzImage",
               "modules"], tree, log)
    staging = build / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "modules").mkdir(parents=True)
    shutil.copyfile(tree / "arch" / "x86" / "boot" / "bzImage", staging / KERNEL_FILE)
    boot_protocol(staging / KERNEL_FILE)
    (staging / "config").write_text(config)
    # The same dependency walk as the Debian kernel's modules; the tree holds only the
    # modules tiny.config asks for, each needing only what is built in.
    available = modules.index_tree(tree / "drivers")
    order = modules.load_order(DISK_MODULES, available)
    for name in order:
        (staging / "modules" / f"{name}.ko").write_bytes(modules.read_module(available[name]))
    facts["fragment_sha256"] = files_digest([FRAGMENT])
    facts["compression"] = "lz4-stored" if "CONFIG_KERNEL_LZ4=y" in config else "other"
    facts["modules"] = order
    facts["disk_modules"] = order  # loaded by /init only when the command line has DISK_FLAG
    publish(folder, staging, order, facts)
    shutil.rmtree(build)
    return load(folder, "tiny")
