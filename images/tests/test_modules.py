"""Module dependency order, on modules compiled by the host's gcc (independent ELF writer)."""

from __future__ import annotations

import lzma
import shutil
import subprocess
from pathlib import Path

import pytest

from images import modules
from images.errors import ImageError

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")


def fake_module(folder: Path, name: str, depends: str, bits: int = 32) -> Path:
    """An object file whose .modinfo section holds ``depends=...`` as a kernel module's does."""
    source = folder / f"{name}.c"
    source.write_text(
        'const char license[] __attribute__((section(".modinfo"))) = "license=GPL";\n'
        f'const char deps[] __attribute__((section(".modinfo"))) = "depends={depends}";\n'
    )
    target = folder / f"{name}.ko"
    subprocess.run(["gcc", f"-m{bits}", "-c", str(source), "-o", str(target)], check=True)
    source.unlink()
    return target


@pytest.fixture()
def tree(tmp_path):
    """net-card needs 8390 and core; core needs ring; ring needs nothing (one .xz)."""
    (tmp_path / "kernel" / "drivers").mkdir(parents=True)
    fake_module(tmp_path / "kernel" / "drivers", "net-card", "8390,core")
    fake_module(tmp_path / "kernel", "8390", "")
    fake_module(tmp_path / "kernel", "core", "ring", bits=64)
    ring = fake_module(tmp_path / "kernel", "ring", "")
    ring.with_name("ring.ko.xz").write_bytes(lzma.compress(ring.read_bytes()))
    ring.unlink()
    return modules.index_tree(tmp_path)


def test_index_normalises_names_and_finds_compressed_modules(tree):
    assert sorted(tree) == ["8390", "core", "net_card", "ring"]
    assert tree["ring"].name == "ring.ko.xz"


def test_dependencies_come_from_modinfo_of_32_and_64_bit_elf(tree):
    assert modules.dependencies(modules.read_module(tree["net_card"])) == ["8390", "core"]
    assert modules.dependencies(modules.read_module(tree["core"])) == ["ring"]
    assert modules.dependencies(modules.read_module(tree["ring"])) == []


def test_load_order_puts_every_dependency_first(tree):
    assert modules.load_order(["net-card"], tree) == ["8390", "ring", "core", "net_card"]


def test_missing_module_is_named(tree):
    with pytest.raises(ImageError, match="module virtio_net is not in"):
        modules.load_order(["virtio-net"], tree)


def test_dependency_cycle_is_reported(tmp_path):
    fake_module(tmp_path, "a", "b")
    fake_module(tmp_path, "b", "a")
    with pytest.raises(ImageError, match="cycle: a -> b -> a"):
        modules.load_order(["a"], modules.index_tree(tmp_path))
