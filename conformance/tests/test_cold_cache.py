"""The first build of every cheap cached artifact, from an empty cache.

A warm cache hides a missing folder or an order dependency: the busybox binary's first
write failed on a newcomer's machine (``conformance/bin`` did not exist yet) while every
developer's cache already had it. Here each builder runs with ``X86LAB_CACHE`` on a new,
empty folder, as on a fresh machine. Downloads are real (Debian's archive) except QEMU's
source tarball (about 120 MB): it is fetched into the usual cache (where the matrix tests
need it anyway) and linked into the empty one, so its extraction and the test-i386 build
still run from nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ground.cache import cache_dir

pytestmark = pytest.mark.slow


def _need_debian_tools() -> None:
    if shutil.which("apt-get") is None or shutil.which("gcc") is None:
        pytest.skip("needs apt and gcc (a Debian host)")


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _need_debian_tools()
    root = tmp_path / "cache"
    monkeypatch.setenv("X86LAB_CACHE", str(root))
    assert not root.exists()
    return root


def test_busybox_binary_and_suite_files_build_into_an_empty_cache(empty_cache: Path) -> None:
    from conformance import busybox_suite

    binary = busybox_suite.busybox_binary()
    assert binary.is_relative_to(empty_cache)
    assert binary.read_bytes()[:4] == b"\x7fELF" and os.access(binary, os.X_OK)
    files = busybox_suite.suite_files()
    assert set(files) == {"busybox-testsuite.tar", "busybox.config", "busybox-suite.sh"}
    assert b"CONFIG_" in files["busybox.config"]
    assert busybox_suite.applets(limit=2)


def test_the_stepper_builds_into_an_empty_cache(empty_cache: Path) -> None:
    from differential.runners import native_runner

    built = native_runner.build()
    assert built.is_relative_to(empty_cache) and built.read_bytes()[:4] == b"\x7fELF"


def test_test_i386_builds_into_an_empty_cache(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance import sources, test_i386

    _need_debian_tools()
    tarball = sources.upstream_tarball(test_i386.PACKAGE)  # the usual cache
    empty_cache = tmp_path / "cache"
    monkeypatch.setenv("X86LAB_CACHE", str(empty_cache))
    store = cache_dir("conformance") / "src"
    store.mkdir()
    os.symlink(tarball, store / tarball.name)
    binary = test_i386.build()
    assert binary.is_relative_to(empty_cache) and binary.read_bytes()[:4] == b"\x7fELF"
