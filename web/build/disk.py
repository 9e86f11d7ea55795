"""The web demo's optional root disk: an ext2 image with more tools, read lazily by v86.

The page attaches it as ``hda`` (``/dev/sda``; the image's /init mounts it read-only at
/mnt/disk) and v86 fetches only the 256-byte-aligned pieces the guest reads, through HTTP
Range or, on hosts without Range, through fixed-size chunk files (``chunks.py``).

Contents, all real and BusyBox-independent:
- ``/bin/bash``: Debian's statically linked ``bash-static`` (i386), a full GNU bash;
- ``/testdata/high.bin``: 2 MiB of known pseudo-random bytes (``probe_pattern``) placed near
  the end of the 64 MiB disk, so a test can check that v86 reads far into the image and
  fetches only what it reads;
- ``/README``.

The image is made on the host without root and is byte-for-byte reproducible: an empty
``mke2fs`` with fixed UUID, hash seed and time (``E2FSPROGS_FAKE_TIME``), then a
``debugfs`` script that adds the files in sorted order (``mke2fs -d`` would follow the
host's readdir order). It is cached under ``cache_dir("web")/disks`` by its inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from ground.cache import cache_dir
from web.build.errors import BuildError
from web.build.hashing import sha256_file

DISK_SIZE = 64 << 20
BLOCK_SIZE = 4096
FAKE_TIME = "1700000000"
"""2023-11-14: every inode time on the disk, so rebuilding gives the same bytes."""
FS_UUID = "5d1e7a0b-86a1-4ab0-9d15-000000000001"
HASH_SEED = "5d1e7a0b-86a1-4ab0-9d15-000000000002"
LABEL = "x86lab-tools"
TEST_FILE = "/testdata/high.bin"
TEST_FILE_SIZE = 2 << 20
TEST_FILE_TAIL_GAP = 1 << 20
"""Free space left after the test file: it starts at disk size - 3 MiB."""
TOOLS: Tuple[Tuple[str, str, str], ...] = (("bash-static", "bin/bash-static", "/bin/bash"),)
"""(Debian i386 package, file inside the .deb, path on the disk)."""
README = """x86lab tools disk (ext2, read-only at /mnt/disk), fetched lazily by v86.
  /mnt/disk/bin/bash            GNU bash (Debian bash-static, i386)
  /mnt/disk/testdata/high.bin   2 MiB test pattern near the end of the disk
"""


def probe_pattern(size: int) -> bytes:
    """The test file's bytes: SHA-256 of ``b"x86lab disk block %d"`` for 0, 1, 2, ...

    Pseudo-random (the bytes cannot be guessed from the offset, so a misplaced read shows)
    and defined in one line, so a test can recompute them with its own hashlib.
    """
    digests = (hashlib.sha256(b"x86lab disk block %d" % i).digest()
               for i in range(-(-size // 32)))
    return b"".join(digests)[:size]


@dataclass(frozen=True)
class DiskImage:
    """A built disk: the image file and facts the site manifest and the tests need."""

    path: Path
    sha256: str
    size: int
    facts: dict
    """{"test_file": {path, size, sha256, first_block, offset}, "tools": [...], "key"}"""


def _run(argv: List[str], what: str, env: Dict[str, str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    except FileNotFoundError:
        raise BuildError(f"{argv[0]} not found; install e2fsprogs (scripts/setup.sh)") from None
    if done.returncode != 0:
        raise BuildError(f"{what} failed: {(done.stderr or done.stdout).strip()[-400:]}")
    return done.stdout


def _tool_files(store: Path, scratch: Path) -> Tuple[List[Tuple[Path, str]], List[dict]]:
    """Each tool's binary extracted from its Debian package: [(host file, disk path)]."""
    from images import debs
    from images.errors import ImageError

    files, packages = [], []
    for name, inner, target in TOOLS:
        try:
            package = debs.resolve(name, store)
            tree = debs.extract(debs.download(package, store / "debs"), scratch / name)
        except ImageError as exc:
            raise BuildError(f"the tools disk needs {name}: {exc} (or build with --no-disk)"
                             ) from None
        if not (tree / inner).is_file():
            raise BuildError(f"{name} {package.version} has no /{inner}")
        files.append((tree / inner, target))
        packages.append({**package.as_manifest(), "file": target})
    return files, packages


def _first_free_block(image: Path, env: Dict[str, str]) -> int:
    out = _run(["debugfs", "-R", "ffb 1", str(image)], "debugfs ffb", env)
    return int(out.split("Free blocks found:")[1].split()[0])


def _write(source: Path, target: str, mode: str) -> List[str]:
    """debugfs takes a plain name in the current folder (a slash would corrupt it); the
    host path is quoted in case the cache folder has spaces."""
    where = Path(target)
    return [f"cd {where.parent}", f'write "{source}" {where.name}',
            f"sif {where.name} mode {mode}"]


def _check_sizes(image: Path, files: List[Tuple[Path, str]], env: Dict[str, str]) -> None:
    """debugfs exits 0 even when a command in its script fails: check every file landed."""
    for source, target in files:
        stat = _run(["debugfs", "-R", f"stat {target}", str(image)], "debugfs stat", env)
        if f"Size: {source.stat().st_size}\n" not in stat:
            raise BuildError(f"debugfs did not write {target} ({source}) into the disk")


def _populate(image: Path, lines: List[str], scratch: Path, env: Dict[str, str]) -> None:
    script = scratch / "populate.debugfs"
    script.write_text("\n".join(lines) + "\n")
    _run(["debugfs", "-w", "-f", str(script), str(image)], "debugfs populate", env)


def _tools_script(files: List[Tuple[Path, str]], readme: Path) -> List[str]:
    """Folders and files in sorted order, so the layout never depends on the host."""
    entries = sorted([(target, source, "0100755") for source, target in files]
                     + [("/README", readme, "0100644")])
    folders = sorted(({str(Path(target).parent) for target, _, _ in entries}
                      | {str(Path(TEST_FILE).parent)}) - {"/"})
    lines = [f"mkdir {folder}" for folder in folders]
    for target, source, mode in entries:
        lines += _write(source, target, mode)
    return lines


def make_image(image: Path, files: List[Tuple[Path, str]], scratch: Path) -> None:
    """Write the disk to ``image``: ``files`` = [(host file, path on the disk)] plus the
    README and the test file; ``scratch`` holds the intermediate files."""
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": FAKE_TIME, "LC_ALL": "C"}
    with image.open("wb") as handle:
        handle.truncate(DISK_SIZE)
    _run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", str(BLOCK_SIZE), "-m", "0", "-N", "256",
          "-L", LABEL, "-U", FS_UUID, "-E", f"hash_seed={HASH_SEED},root_owner=0:0",
          str(image)], "mke2fs", env)
    readme = scratch / "README"
    readme.write_text(README)
    _populate(image, _tools_script(files, readme), scratch, env)
    # The test file: reserve every free block below its target (setb), write it, so
    # libext2fs allocates it there, then free the reserve again.
    test_file = scratch / "high.bin"
    test_file.write_bytes(probe_pattern(TEST_FILE_SIZE))
    first = _first_free_block(image, env)
    count = (DISK_SIZE - TEST_FILE_SIZE - TEST_FILE_TAIL_GAP) // BLOCK_SIZE - first
    _populate(image, [f"setb {first} {count}", *_write(test_file, TEST_FILE, "0100644"),
                      f"freeb {first} {count}"], scratch, env)
    _check_sizes(image, [*files, (readme, "/README"), (test_file, TEST_FILE)], env)
    check = subprocess.run(["e2fsck", "-fn", str(image)], capture_output=True, text=True)
    if check.returncode != 0:
        raise BuildError(f"e2fsck found errors in the new disk: {check.stdout[-400:]}")


def file_blocks(image: Path, path: str) -> List[int]:
    """Physical block numbers of ``path``'s data and indirect blocks (``debugfs blocks``)."""
    env = {**os.environ, "LC_ALL": "C"}
    return [int(n) for n in _run(["debugfs", "-R", f"blocks {path}", str(image)],
                                 "debugfs blocks", env).split()]


def _recipe_key(packages: List[dict]) -> str:
    from images.debs import installed_version

    recipe = json.dumps({
        "source": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "packages": [p["sha256"] for p in packages],
        "e2fsprogs": installed_version("e2fsprogs"),
    }, sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:20]


def ensure_disk() -> DiskImage:
    """The tools disk, built once per recipe (this file, the packages, e2fsprogs)."""
    store = cache_dir("images")
    folder = cache_dir("web") / "disks"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch_name:
        scratch = Path(scratch_name)
        files, packages = _tool_files(store, scratch)
        key = _recipe_key(packages)
        image, facts_file = folder / f"{key}.img", folder / f"{key}.json"
        if not (image.exists() and facts_file.exists()):
            partial = scratch / "disk.img"
            make_image(partial, files, scratch)
            blocks = file_blocks(partial, TEST_FILE)
            facts = {"key": key, "tools": packages, "test_file": {
                "path": TEST_FILE, "size": TEST_FILE_SIZE,
                "sha256": hashlib.sha256(probe_pattern(TEST_FILE_SIZE)).hexdigest(),
                "first_block": min(blocks), "offset": min(blocks) * BLOCK_SIZE}}
            facts_file.write_text(json.dumps(facts, indent=1) + "\n")
            partial.replace(image)
    facts = json.loads(facts_file.read_text())
    return DiskImage(image, sha256_file(image), image.stat().st_size, facts)
