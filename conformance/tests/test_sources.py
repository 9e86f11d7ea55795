"""Peer sources on a new machine: the cache starts empty, and apt-get must be run in a
folder that exists (a cold-cache CI run found it did not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import sources


def test_download_runs_apt_get_in_a_folder_that_exists_on_an_empty_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X86LAB_CACHE", str(tmp_path / "new-cache"))
    monkeypatch.setattr(sources, "source_version", lambda package: "1:7.2+dfsg-7")
    seen = []

    def fake_apt_get(command, cwd: Path, what: str) -> str:
        seen.append((command, cwd.is_dir()))
        (cwd / "qemu_7.2+dfsg.orig.tar.xz").write_bytes(b"")
        return ""

    monkeypatch.setattr(sources, "_run", fake_apt_get)
    tarball = sources.upstream_tarball("qemu")
    assert seen == [(["apt-get", "source", "--download-only", "qemu=1:7.2+dfsg-7"], True)]
    assert tarball.name == "qemu_7.2+dfsg.orig.tar.xz"
    assert tarball.parent == tmp_path / "new-cache" / "conformance" / "src"
