"""Cached images, kernels and packages are checked against their recorded sha256 (issue 16).

Fast tests use small files; the slow ones copy the real tiny kernel and BusyBox package
from the user's cache into a temporary X86LAB_CACHE, damage the copies, and run
``x86lab image build`` as a user would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from ground import assets
from ground.cache import cache_root
from images.kernel import load, publish, tiny
from images.keys import key_of

REPO = Path(__file__).resolve().parents[2]


def expected_of(folder: Path, *names: str) -> Dict[str, Dict[str, object]]:
    return {name: {"size": len((folder / name).read_bytes()),
                   "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest()}
            for name in names}


def flip_bit(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0x10]))


@pytest.fixture
def entry(tmp_path: Path) -> Path:
    (tmp_path / "a.bin").write_bytes(os.urandom(5000))
    (tmp_path / "b.bin").write_bytes(b"x" * 100)
    return tmp_path


def test_intact_files_pass_and_are_then_trusted_by_their_look(
        entry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = expected_of(entry, "a.bin", "b.bin")
    assert assets.problems(entry, expected) == []
    hashed = []
    monkeypatch.setattr(assets, "sha256_file", lambda path: hashed.append(path) or "")
    assert assets.problems(entry, expected) == []
    assert hashed == []  # the stamp spared the hashing
    assert assets.problems(entry, expected, full=True) != []  # full always hashes


def test_truncation_and_a_missing_file_are_found(entry: Path) -> None:
    expected = expected_of(entry, "a.bin", "b.bin")
    assets.problems(entry, expected)
    os.truncate(entry / "a.bin", 4000)
    (entry / "b.bin").unlink()
    assert assets.problems(entry, expected) == [
        "a.bin is 4,000 bytes, the manifest says 5,000", "b.bin is missing"]


def test_a_flipped_bit_is_found_even_with_the_old_mtime(entry: Path) -> None:
    expected = expected_of(entry, "a.bin")
    assets.problems(entry, expected)
    before = (entry / "a.bin").stat()
    flip_bit(entry / "a.bin", 1234)
    os.utime(entry / "a.bin", ns=(before.st_atime_ns, before.st_mtime_ns))
    found = assets.problems(entry, expected)
    assert len(found) == 1 and found[0].startswith("a.bin has sha256 ")


def test_verify_all_finds_damage_the_stamp_hides(entry: Path) -> None:
    """Damage that leaves size, times and inode alone (disk rot) is only seen by a full
    hash: simulated by re-stamping the damaged file's look."""
    expected = expected_of(entry, "a.bin")
    assets.problems(entry, expected)
    flip_bit(entry / "a.bin", 10)
    stamp = json.loads((entry / assets.STAMP_FILE).read_text())
    stamp["a.bin"] = assets._look((entry / "a.bin").stat()) + [expected["a.bin"]["sha256"]]
    (entry / assets.STAMP_FILE).write_text(json.dumps(stamp))
    assert assets.problems(entry, expected) == []
    assert len(assets.problems(entry, expected, full=True)) == 1


def test_own_copy_breaks_a_hard_link_keeping_the_bytes(tmp_path: Path) -> None:
    (tmp_path / "kernel").write_bytes(b"bz" * 100)
    os.link(tmp_path / "kernel", tmp_path / "image")
    assets.own_copy(tmp_path / "image")
    assert (tmp_path / "kernel").stat().st_nlink == 1
    assert (tmp_path / "image").read_bytes() == b"bz" * 100
    os.truncate(tmp_path / "image", 10)
    assert (tmp_path / "kernel").stat().st_size == 200


def test_a_damaged_kernel_folder_is_reported_with_its_path_and_rebuild(tmp_path: Path
                                                                       ) -> None:
    staging = tmp_path / "staging"
    (staging / "modules").mkdir(parents=True)
    (staging / "bzImage").write_bytes(b"\0" * 600)
    (staging / "modules" / "ne2k.ko").write_bytes(b"module")
    folder = tmp_path / "kernels" / "tiny-0123"
    publish(folder, staging, ["ne2k"], {})
    flip_bit(folder / "modules" / "ne2k.ko", 2)
    with pytest.raises(Exception, match=(
            rf"cached tiny kernel in {folder} is damaged: modules/ne2k.ko has sha256 .*; "
            r"rebuild it with: x86lab image build --kernel tiny --rebuild")):
        load(folder, "tiny")


# --- the real thing, in a copied cache --------------------------------------------------


def _real_store() -> Path:
    return cache_root() / "images"


@pytest.fixture
def copied_cache(tmp_path: Path) -> Path:
    """A cache holding copies of the tiny kernel and the BusyBox package (no image yet)."""
    store = _real_store()
    kernels = sorted(p for p in (store / "kernels").glob("tiny-*") if p.is_dir()
                     and not p.name.endswith(".build"))
    debs = sorted((store / "debs").glob("busybox-static_*.deb"))
    if not kernels or not debs or not (store / "apt-answers.json").exists():
        pytest.skip("the tiny kernel is not built here (make images)")
    copy = tmp_path / "cache" / "images"
    (copy / "debs").mkdir(parents=True)
    shutil.copy2(store / "apt-answers.json", copy)
    for deb in debs:
        shutil.copy2(deb, copy / "debs")
    for kernel in kernels:
        shutil.copytree(kernel, copy / "kernels" / kernel.name)
    return tmp_path / "cache"


def image_build(cache: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "x86lab.cli", "image", "build", "--kernel",
                           "tiny", "--json", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, X86LAB_CACHE=str(cache)), timeout=600)


@pytest.mark.slow
def test_image_build_finds_a_damaged_image_and_rebuilds_it(copied_cache: Path) -> None:
    first = image_build(copied_cache)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(first.stdout)
    folder = Path(manifest["manifest_path"]).parent
    kernel = folder / manifest["kernel"]["file"]
    kernels = list((copied_cache / "images" / "kernels").glob("tiny-*/bzImage"))
    assert kernel.stat().st_nlink == 1 and all(k.stat().st_ino != kernel.stat().st_ino
                                                for k in kernels)
    for damage in (lambda: os.truncate(kernel, 4096),
                   lambda: flip_bit(folder / manifest["initramfs"]["file"], 70000)):
        damage()
        again = image_build(copied_cache)
        assert again.returncode == 0, again.stderr
        assert f"cached image in {folder} is damaged" in again.stderr
        assert "rebuilding it" in again.stderr
        for part in ("kernel", "initramfs"):
            path = folder / manifest[part]["file"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest[part]["sha256"]
    quiet = image_build(copied_cache)
    assert (quiet.returncode, quiet.stderr) == (0, "")


@pytest.mark.slow
def test_a_damaged_kernel_is_reported_naming_the_cache_and_rebuild(copied_cache: Path
                                                                   ) -> None:
    first = image_build(copied_cache)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(first.stdout)
    folder = Path(manifest["manifest_path"]).parent
    # the kernel this image came from, by its recipe's key: the cache may hold earlier
    # configurations' too, even byte-identical ones under other keys (a recipe file that
    # changed without changing the kernel)
    key = key_of(tiny.inputs())
    kernel = copied_cache / "images" / "kernels" / f"tiny-{key}" / "bzImage"
    assert hashlib.sha256(kernel.read_bytes()).hexdigest() == manifest["kernel"]["sha256"]
    os.truncate(kernel, kernel.stat().st_size - 1)
    os.truncate(folder / "bzImage", 100)  # so that the image must be rebuilt from it
    done = image_build(copied_cache)
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"x86lab: error: cached tiny kernel in {kernel.parent} is damaged")
    assert line.endswith("rebuild it with: x86lab image build --kernel tiny --rebuild")
