"""Peer programs' sources from Debian source packages, cached by package version.

``apt-get source --download-only`` needs a ``deb-src`` entry (scripts/setup.sh adds
/etc/apt/sources.list.d/x86lab-src.sources). Only the files a suite needs are extracted
from the upstream tarball (QEMU's is large), into a folder named by the version.
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path
from typing import Sequence

from ground.cache import cache_dir


class SourceError(RuntimeError):
    """A source package could not be fetched or unpacked; the message says what to do."""


def _run(command: Sequence[str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True,
                              timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"{what}: {exc}") from None
    if done.returncode != 0:
        raise SourceError(f"{what} failed: {done.stderr.strip()[-400:]} (is there a deb-src "
                          "entry? run scripts/setup.sh)")
    return done.stdout


def source_version(package: str) -> str:
    """The version ``apt-get source`` would fetch (the candidate in the deb-src index)."""
    out = _run(["apt-cache", "showsrc", "--only-source", package], Path("/"),
               f"apt-cache showsrc {package}")
    versions = [line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("Version:")]
    if not versions:
        raise SourceError(f"no source package {package!r} known to apt; add a deb-src entry "
                          "(scripts/setup.sh) and run apt-get update")
    return versions[0]


def upstream_tarball(package: str) -> Path:
    """The package's ``.orig.tar.*``, downloaded once into the cache."""
    version = source_version(package)
    store = cache_dir("conformance") / "src"
    store.mkdir(parents=True, exist_ok=True)  # a new machine's cache has no src/ yet
    upstream = version.split(":")[-1].rsplit("-", 1)[0]
    found = sorted(store.glob(f"{package}_{upstream}.orig.tar.*"))
    if not found:
        _run(["apt-get", "source", "--download-only", f"{package}={version}"], store,
             f"apt-get source {package}")
        found = sorted(store.glob(f"{package}_{upstream}.orig.tar.*"))
    if not found:
        raise SourceError(f"apt-get source {package} left no {package}_{upstream}.orig.tar.*")
    return found[0]


def extract(package: str, inner: str) -> Path:
    """The folder ``inner`` (path below the tarball's top folder) of the package's
    upstream source, extracted once per version; returns the extracted folder."""
    tarball = upstream_tarball(package)
    destination = cache_dir("conformance") / "extracted" / tarball.name.split(".orig")[0]
    target = destination / inner
    if target.exists():
        return target
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers()
                   if m.name.split("/", 1)[-1].startswith(inner.rstrip("/") + "/")]
        if not members:
            raise SourceError(f"{tarball.name} has no {inner}/")
        for member in members:
            member.name = member.name.split("/", 1)[-1]
        for member in members:
            extract_member(archive, member, destination)
    return target


def extract_member(archive: tarfile.TarFile, member: tarfile.TarInfo, root: Path) -> None:
    """Extract one member below ``root``, refusing what could land outside it.

    CPython 3.11.4 and later (and 3.9.17+, 3.10.12+) do this with ``filter="data"``;
    Debian 12's CPython 3.11.2 has no ``filter``, so there the same rule is checked here:
    files, folders and links whose names and link targets stay below ``root``."""
    if hasattr(tarfile, "data_filter"):
        archive.extract(member, root, filter="data")
        return
    base = root.resolve()
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise SourceError(f"{member.name}: a device or fifo in the tarball")
    path = (base / member.name).resolve()
    places = [path]
    if member.issym():
        places.append((path.parent / member.linkname).resolve())
    elif member.islnk():
        places.append((base / member.linkname).resolve())
    for place in places:
        if place != base and base not in place.parents:
            raise SourceError(f"{member.name}: would land outside {root}")
    member.mode &= 0o755  # as the filter: no setuid, setgid, sticky or shared write
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    archive.extract(member, root)
