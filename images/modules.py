"""Finding kernel modules and the order to load them in, from a kernel package's tree.

Debian's linux-image package ships no modules.dep (``depmod`` writes it at install time),
so dependencies are read from each module's own ``.modinfo`` ELF section, whose
``depends=`` entry names the modules it needs. Modules may be shipped compressed
(``.ko.xz``, ``.ko.gz``); they are decompressed on the host so the guest needs no
decompressor and BusyBox's plain ``insmod`` can load them.
"""

from __future__ import annotations

import gzip
import lzma
import struct
from pathlib import Path
from typing import Dict, List

from images.errors import ImageError

_SUFFIXES = (".ko", ".ko.xz", ".ko.gz")


def module_name(path: Path) -> str:
    """``ne2k-pci.ko.xz`` -> ``ne2k_pci``: the kernel treats - and _ alike in names."""
    name = path.name
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


def read_module(path: Path) -> bytes:
    """The plain ELF bytes of a module, decompressing .xz and .gz."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def elf_section(elf: bytes, wanted: str) -> bytes:
    """The contents of one named section of a 32- or 64-bit little-endian ELF file."""
    if elf[:4] != b"\x7fELF" or elf[5] != 1:
        raise ImageError("not a little-endian ELF file")
    is64 = elf[4] == 2
    if is64:
        (shoff,) = struct.unpack_from("<Q", elf, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
        layout = "<IIQQQQ"
    else:
        (shoff,) = struct.unpack_from("<I", elf, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x2E)
        layout = "<IIIIII"

    def section(index: int):
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            layout, elf, shoff + index * shentsize
        )
        return name, offset, size

    _, names_offset, _ = section(shstrndx)
    for index in range(shnum):
        name_at, offset, size = section(index)
        start = names_offset + name_at
        name = elf[start : elf.index(b"\0", start)].decode()
        if name == wanted:
            return elf[offset : offset + size]
    raise ImageError(f"ELF file has no {wanted} section")


def dependencies(elf: bytes) -> List[str]:
    """The names in a module's ``depends=`` modinfo entry (empty if it needs none)."""
    for item in elf_section(elf, ".modinfo").split(b"\0"):
        if item.startswith(b"depends="):
            value = item[len(b"depends=") :].decode()
            return [name.replace("-", "_") for name in value.split(",") if name]
    return []


def index_tree(modules_root: Path) -> Dict[str, Path]:
    """Module name -> file, for every module under a ``lib/modules/VERSION`` folder."""
    found: Dict[str, Path] = {}
    for path in sorted(modules_root.rglob("*.ko*")):
        if path.name.endswith(_SUFFIXES):
            found[module_name(path)] = path
    return found


def load_order(wanted: List[str], available: Dict[str, Path]) -> List[str]:
    """``wanted`` and everything they need, each module after its dependencies.

    Depth-first, dependencies in the order modinfo lists them, so the result is the same
    on every run.
    """
    order: List[str] = []
    visiting: List[str] = []

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in order:
            return
        if name in visiting:
            raise ImageError(f"module dependency cycle: {' -> '.join(visiting + [name])}")
        if name not in available:
            raise ImageError(f"module {name} is not in the kernel package's module tree")
        visiting.append(name)
        for dependency in dependencies(read_module(available[name])):
            visit(dependency)
        visiting.pop()
        order.append(name)

    for name in wanted:
        visit(name)
    return order
