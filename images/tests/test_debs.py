"""apt answers and their errors, with stand-in apt tools on PATH (no network, no apt state)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from images import debs
from images.errors import ImageError

SHOW = """Package: linux-image-686
Version: 6.1.176-1
Depends: linux-image-6.1.0-50-686 (= 6.1.176-1)
Size: 1476
SHA256: {meta}

Package: linux-image-6.1.0-50-686
Version: 6.1.176-1
Size: 51921880
SHA256: {real}
"""


def fake_tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


@pytest.fixture()
def fake_apt(tmp_path, monkeypatch):
    """apt-cache answering for the two kernel packages; unknown names exit 100 as apt does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stanzas = SHOW.format(meta="a" * 64, real="b" * 64).split("\n\n")
    fake_tool(
        bin_dir,
        "apt-cache",
        f"""
case "$3" in
  linux-image-686:i386) cat <<'END'
{stanzas[0]}
END
  ;;
  linux-image-6.1.0-50-686:i386) cat <<'END'
{stanzas[1]}
END
  ;;
  *) echo "E: No packages found" >&2; exit 100 ;;
esac
""",
    )
    fake_tool(bin_dir, "dpkg-query", "exit 1\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(debs, "APT_LISTS", tmp_path / "no-lists")
    return tmp_path / "store"


def test_metapackage_resolves_to_the_versioned_kernel_package(fake_apt):
    package = debs.resolve_kernel("linux-image-686", fake_apt)
    assert (package.name, package.version, package.sha256) == (
        "linux-image-6.1.0-50-686",
        "6.1.176-1",
        "b" * 64,
    )
    assert package.size == 51921880


def test_answers_are_remembered_while_the_index_is_unchanged(fake_apt):
    first = debs.resolve("linux-image-686", fake_apt)
    fake_tool(fake_apt.parent / "bin", "apt-cache", "exit 100\n")  # apt would now fail
    assert debs.resolve("linux-image-686", fake_apt) == first


def test_unknown_package_names_itself_and_the_fix(fake_apt):
    with pytest.raises(ImageError, match=r"busybox-static:i386 is unknown to apt; enable i386"):
        debs.resolve("busybox-static", fake_apt)


def test_missing_host_package_says_how_to_install_it(fake_apt):
    with pytest.raises(ImageError, match="apt-get install linux-source-6.1"):
        debs.installed_version("linux-source-6.1")
