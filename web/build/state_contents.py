"""What a site's saved state holds, part by part, and what each part costs on the wire.

The state is most of what a page restored from it downloads (2.6 of 3.1 MB for the tiny
site), so whether it can shrink depends on what is in it. v86 stores guest RAM as its
non-zero 4 KiB pages, so each stored page is attributed to one part:

- an initramfs file: a page equal to a 4 KiB page of a file in the site's initramfs (the
  rootfs keeps every file in RAM for good: BusyBox is most of it);
- firmware: a page equal to a page of the BIOS or VGA BIOS the page boots with, or in the
  legacy ROM and video hole (640 KiB to 1 MiB) anyway;
- the kernel image: any other page in the range the bzImage's boot header says the kernel
  runs in (``pref_address`` and ``init_size``: ``images.bootheader.load_area``). That
  range is the decompressor's whole buffer, so the kernel's own allocations made in its
  tail after boot count here too; and a kernel that moves itself elsewhere (KASLR: the
  Debian kernel) is not found there and counts with the allocations (the tiny kernel
  has no KASLR and runs where it asks);
- the kernel's allocations and the processes: everything else (page tables, slab, the
  shell's memory, the network stack's buffers);
- device state: the rest of the file (CPU, devices, VGA memory), mostly zeros.

Each part is compressed on its own with the state's own zstd settings, so the parts show
what each costs, not the whole file's exact split (zstd finds less to share between parts
compressed apart; the total is shown beside the file's size).
"""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from images.bootheader import load_area
from images.cpio import read_newc
from images.errors import ImageError
from web.build.built import built_manifest
from web.build.errors import BuildError
from web.build.state import ZSTD_ARGS

STATE_MAGIC = 0x86768676
"""v86's save_state header: int32 magic, version, total size, JSON length; the JSON at 16,
then the buffers (the JSON's buffer_infos: offset, length) from the next 4-byte boundary.
The CPU's state is the JSON's list ``state``: item 77 is guest RAM packed (only pages not
all zero, in address order), item 78 the bitmap of which 4 KiB pages those are."""
PACKED_MEMORY, PAGE_BITMAP = 77, 78
PAGE = 4096
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LEGACY_HOLE = range(0xA0000 // PAGE, 0x100000 // PAGE)
"""The PC's video memory, option ROMs and system BIOS: firmware whatever its contents."""

KERNEL, FIRMWARE, ALLOCATED, DEVICES = (
    "kernel image (its load area)", "firmware (BIOS, VGA BIOS)", "kernel allocations and processes",
    "device state (CPU, devices, VGA memory)")


@dataclass
class V86State:
    """A decoded v86 state: the raw bytes and the JSON document that indexes them."""

    raw: bytearray
    document: dict
    base: int

    def buffer(self, item: int) -> Tuple[int, int]:
        """(offset in ``raw``, length) of the state list's ``item``, a buffer reference."""
        info = self.document["buffer_infos"][self.document["state"][item]["buffer_id"]]
        return self.base + info["offset"], info["length"]

    def pages(self) -> Iterator[Tuple[int, int]]:
        """(guest page number, offset of its 4 KiB in ``raw``) of every stored page, in
        address order."""
        bitmap, length = self.buffer(PAGE_BITMAP)
        packed, _ = self.buffer(PACKED_MEMORY)
        slot = 0
        for index in range(length):
            byte = self.raw[bitmap + index]
            for bit in range(8):
                if byte >> bit & 1:
                    yield index * 8 + bit, packed + slot * PAGE
                    slot += 1


def parse_state(raw: bytes) -> V86State:
    """A v86 state (zstd-compressed or not); ValueError if it is not one."""
    if raw[:4] == ZSTD_MAGIC:
        raw = subprocess.run(["zstd", "-dcq"], input=raw, capture_output=True,
                             check=True).stdout
    if len(raw) < 16:
        raise ValueError(f"{len(raw)} bytes: too short for a v86 state")
    magic, _version, total, json_length = struct.unpack_from("<IiiI", raw)
    if magic != STATE_MAGIC or total != len(raw):
        raise ValueError(f"not a v86 state (magic {magic:#x}, size {total} for {len(raw)} "
                         "bytes)")
    document = json.loads(bytes(raw[16:16 + json_length]))
    return V86State(bytearray(raw), document, (16 + json_length + 3) & ~3)


def kernel_pages(bzimage: Path) -> range:
    """The guest pages the kernel runs in (``images.bootheader.load_area``)."""
    address, size = load_area(bzimage)
    return range(address // PAGE, (address + size + PAGE - 1) // PAGE)


def page_index(files: Dict[str, bytes]) -> Dict[bytes, str]:
    """Each 4 KiB page of each file (the last one zero-padded, as the page cache holds it)
    -> the file's name. All-zero pages are left out: v86 does not store them."""
    index: Dict[bytes, str] = {}
    for name, data in files.items():
        for start in range(0, len(data), PAGE):
            page = data[start:start + PAGE].ljust(PAGE, b"\0")
            if page.count(0) != PAGE:
                index.setdefault(page, name)
    return index


@dataclass
class Part:
    """One part of the state: how many pages, their bytes, zstd's size of them alone."""

    name: str
    pages: int = 0
    chunks: List[bytes] = field(default_factory=list, repr=False)

    @property
    def raw_bytes(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


def split(state: V86State, kernel: range, files: Dict[str, bytes],
          firmware: Dict[str, bytes]) -> List[Part]:
    """The state's bytes by part (see the module's docstring)."""
    by_file, by_firmware = page_index(files), page_index(firmware)
    parts: Dict[str, Part] = {}

    def add(name: str, chunk: bytes, pages: int = 1) -> None:
        part = parts.setdefault(name, Part(name))
        part.pages += pages
        part.chunks.append(chunk)

    for number, offset in state.pages():
        page = bytes(state.raw[offset:offset + PAGE])
        if page in by_file:
            add(f"initramfs file /{by_file[page]}", page)
        elif page in by_firmware or number in LEGACY_HOLE:
            add(FIRMWARE, page)
        elif number in kernel:
            add(KERNEL, page)
        else:
            add(ALLOCATED, page)
    packed, length = state.buffer(PACKED_MEMORY)
    add(DEVICES, bytes(state.raw[:packed]) + bytes(state.raw[packed + length:]), pages=0)
    return list(parts.values())


def zstd_size(data: bytes) -> int:
    """Bytes of ``data`` compressed as the state is (state.ZSTD_ARGS)."""
    args = [arg for arg in ZSTD_ARGS if arg != "-f"]
    return len(subprocess.run(["zstd", *args, "-c"], input=data, capture_output=True,
                              check=True).stdout)


def _site_file(site: Path, manifest: dict, key: str) -> Path:
    asset = manifest["assets"].get(key)
    if asset is None:
        raise BuildError(f"{site}: the manifest names no {key} file")
    return site / "os" / asset["file"]


def state_contents(site: Path) -> dict:
    """The breakdown of ``site``'s saved state: the file, and each part's pages, bytes and
    zstd bytes."""
    manifest = built_manifest(site)
    if not manifest.get("state"):
        raise BuildError(f"{site} has no saved state (built with --no-state)")
    state_file = site / "os" / manifest["state"]["file"]
    try:
        state = parse_state(state_file.read_bytes())
    except ValueError as exc:
        raise BuildError(f"{state_file}: {exc}") from None
    files = {entry.path: entry.data
             for entry in read_newc(_site_file(site, manifest, "initrd").read_bytes())}
    firmware = {key: _site_file(site, manifest, key).read_bytes()
                for key in ("bios", "vga_bios")}
    try:
        kernel = kernel_pages(_site_file(site, manifest, "bzimage"))
    except ImageError as exc:
        raise BuildError(str(exc)) from None
    parts = split(state, kernel, files, firmware)
    rows = [{"part": part.name, "pages": part.pages, "bytes": part.raw_bytes,
             "zstd_bytes": zstd_size(b"".join(part.chunks))} for part in parts]
    rows.sort(key=lambda row: -row["zstd_bytes"])
    return {"state": {"file": state_file.name, "bytes": state_file.stat().st_size,
                      "raw_bytes": len(state.raw)},
            "parts": rows, "zstd_bytes_sum": sum(row["zstd_bytes"] for row in rows)}


def print_state_contents(contents: dict, as_json: bool = False,
                         out: Optional[object] = None) -> None:
    """The breakdown as a table (or JSON)."""
    import sys

    out = out or sys.stdout
    if as_json:
        print(json.dumps(contents, indent=1), file=out)
        return
    state = contents["state"]
    print(f"{state['file']}: {state['bytes']:,} bytes on the wire, {state['raw_bytes']:,} "
          "restored", file=out)
    print(f"{'part':<44}{'pages':>7}{'bytes':>12}{'zstd alone':>12}", file=out)
    for row in contents["parts"]:
        print(f"{row['part']:<44}{row['pages']:>7}{row['bytes']:>12,}"
              f"{row['zstd_bytes']:>12,}", file=out)
    print(f"{'sum of the parts compressed apart':<63}{contents['zstd_bytes_sum']:>12,}",
          file=out)
