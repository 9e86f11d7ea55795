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


def _tarball(path: Path, members) -> Path:
    """A tarball of (name, kind, payload) members: kind "file" or "symlink"."""
    import io
    import tarfile
    with tarfile.open(path, "w") as archive:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = payload
                archive.addfile(info)
            else:
                data = payload.encode()
                info.size = len(data)
                info.mode = 0o4775  # setuid and group write: both dropped on extraction
                archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(params=["with filter", "without filter"])
def tarfile_variant(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways: Python with ``tarfile``'s extraction filters, and Debian 12's 3.11.2
    without them (checked by ``extract_member`` itself)."""
    import tarfile
    if request.param == "without filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python's tarfile has no extraction filters")
    return request.param


def test_extract_member_keeps_files_below_the_root(tmp_path: Path, tarfile_variant) -> None:
    import tarfile
    tarball = _tarball(tmp_path / "ok.tar", [("sub/run.sh", "file", "echo hi\n"),
                                             ("sub/link", "symlink", "run.sh")])
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            sources.extract_member(archive, member, tmp_path / "out")
    script = tmp_path / "out" / "sub" / "run.sh"
    assert script.read_text() == "echo hi\n"
    assert script.stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "out" / "sub" / "link").resolve() == script.resolve()


@pytest.mark.parametrize("member", [("../escape", "file", "x"),
                                    ("sub/link", "symlink", "../../outside")])
def test_extract_member_refuses_what_would_land_outside(tmp_path: Path, tarfile_variant,
                                                        member) -> None:
    import tarfile
    tarball = _tarball(tmp_path / "bad.tar", [member])
    with tarfile.open(tarball) as archive:
        with pytest.raises((sources.SourceError, tarfile.FilterError)
                           if hasattr(tarfile, "FilterError") else sources.SourceError):
            for info in archive.getmembers():
                sources.extract_member(archive, info, tmp_path / "out")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "outside").exists()
