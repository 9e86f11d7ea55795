"""The cpio writer, checked by the host's GNU cpio (an independent reader of the format)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess

import pytest

from images.cpio import CpioEntry, write_newc

pytestmark = pytest.mark.skipif(shutil.which("cpio") is None, reason="host cpio missing")

ENTRIES = [
    CpioEntry.directory("bin"),
    CpioEntry.file("bin/tool", b"#!/bin/sh\necho hi\n", 0o755),
    CpioEntry.symlink("bin/sh", "tool"),
    CpioEntry.directory("dev"),
    CpioEntry.char_device("dev/console", 5, 1),
    CpioEntry.file("etc/odd-size", b"x" * 4097),
    CpioEntry.directory("etc"),
]


def archive(entries) -> bytes:
    out = io.BytesIO()
    write_newc(out, entries)
    return out.getvalue()


def host_listing(data: bytes) -> dict:
    """Name -> ``cpio -tv`` fields (mode, links, uid, gid, size or dev, date, [-> target])."""
    result = subprocess.run(
        ["cpio", "-itv", "--numeric-uid-gid", "--quiet"],
        input=data,
        capture_output=True,
        check=True,
    )
    listing = {}
    for line in result.stdout.decode().splitlines():
        fields = line.split()
        year = fields.index("1970")  # every entry must carry the fixed epoch mtime
        listing[fields[year + 1]] = fields[: year + 1] + fields[year + 2 :]
    return listing


def test_host_cpio_reads_every_entry_in_sorted_order():
    names = list(host_listing(archive(ENTRIES)))
    assert names == ["bin", "bin/sh", "bin/tool", "dev", "dev/console", "etc", "etc/odd-size"]


def test_owner_is_root_and_time_is_the_epoch():
    listing = host_listing(archive(ENTRIES))
    assert len(listing) == 7
    for fields in listing.values():
        assert fields[2:4] == ["0", "0"]
        assert "Jan" in fields and "1970" in fields


def test_kinds_modes_and_device_numbers():
    by_name = host_listing(archive(ENTRIES))
    assert by_name["bin/tool"][0] == "-rwxr-xr-x"
    assert by_name["bin/sh"][0].startswith("l") and by_name["bin/sh"][-1] == "tool"
    assert by_name["dev/console"][0] == "crw-------"
    assert by_name["dev/console"][4:6] == ["5,", "1"]
    assert by_name["etc/odd-size"][4] == "4097"


def test_contents_survive_extraction(tmp_path):
    files = [e for e in ENTRIES if not e.path.startswith("dev")]
    subprocess.run(
        ["cpio", "-id", "--quiet", "--no-preserve-owner"],
        input=archive(files),
        cwd=tmp_path,
        check=True,
    )
    assert (tmp_path / "bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (tmp_path / "etc/odd-size").read_bytes() == b"x" * 4097
    assert (tmp_path / "bin/sh").readlink().name == "tool"


def test_same_inputs_in_any_order_give_the_same_sha256():
    first = hashlib.sha256(archive(ENTRIES)).hexdigest()
    again = hashlib.sha256(archive(list(reversed(ENTRIES)))).hexdigest()
    assert first == again


def test_later_entry_replaces_earlier_one_with_the_same_path():
    data = archive([CpioEntry.file("a", b"old"), CpioEntry.file("/a", b"new")])
    assert list(host_listing(data)) == ["a"]
    assert b"new" in data and b"old" not in data


def test_archive_is_block_aligned_and_ends_with_the_trailer():
    data = archive(ENTRIES)
    assert len(data) % 512 == 0
    assert b"TRAILER!!!" in data[-512 - 124 :]


@pytest.mark.parametrize("bad", ["", "..", "a/../b", "TRAILER!!!"], ids=repr)
def test_rejects_paths_that_escape_or_collide_with_the_trailer(bad):
    with pytest.raises(ValueError, match="not a plain relative path"):
        archive([CpioEntry.file(bad, b"")])
