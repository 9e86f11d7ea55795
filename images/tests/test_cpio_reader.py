"""The newc reader, checked against archives the host's GNU cpio writes (an independent
writer of the format) and against our own writer."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from images.cpio import CpioEntry, read_newc, write_newc


@pytest.mark.skipif(shutil.which("cpio") is None, reason="host cpio missing")
def test_reads_what_gnu_cpio_wrote(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "tool").write_bytes(bytes(range(256)) * 17 + b"tail")
    (tree / "bin" / "tool").chmod(0o755)
    (tree / "empty").write_bytes(b"")
    os.symlink("tool", tree / "bin" / "sh")
    names = "bin\nbin/tool\nbin/sh\nempty\n"
    archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=tree,
                             input=names.encode(), capture_output=True, check=True).stdout
    entries = {entry.path: entry for entry in read_newc(archive)}
    assert sorted(entries) == ["bin", "bin/sh", "bin/tool", "empty"]
    assert entries["bin/tool"].data == (tree / "bin" / "tool").read_bytes()
    assert stat.S_ISREG(entries["bin/tool"].mode) and entries["bin/tool"].mode & 0o777 == 0o755
    assert stat.S_ISLNK(entries["bin/sh"].mode) and entries["bin/sh"].data == b"tool"
    assert stat.S_ISDIR(entries["bin"].mode)
    assert entries["empty"].data == b""


def test_reads_back_our_own_archive() -> None:
    written = [CpioEntry.directory("dev"), CpioEntry.char_device("dev/console", 5, 1),
               CpioEntry.file("init", b"#!/bin/sh\n" * 3, 0o755)]
    out = io.BytesIO()
    write_newc(out, written)
    assert read_newc(out.getvalue()) == written


@pytest.mark.parametrize("cut", [0, 50, 200])
def test_a_truncated_or_foreign_archive_is_a_clear_error(cut: int) -> None:
    out = io.BytesIO()
    write_newc(out, [CpioEntry.file("big", b"x" * 1000)])
    with pytest.raises(ValueError, match="newc|announced"):
        read_newc(out.getvalue()[:cut] if cut else b"PK\x03\x04 not a cpio archive" * 8)
