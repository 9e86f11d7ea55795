"""Debian packages the images are made from: resolved with apt, downloaded once, verified.

The i386 packages (busybox-static, linux-image-686) are downloaded, never installed: the
host is amd64 and only needs their files. apt tells us the exact version and sha256, which
name the cached .deb and go into the image's cache key and manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

from ground import assets
from images.errors import ImageError

ARCH = "i386"
APT_LISTS = Path("/var/lib/apt/lists")
MEMO_FILE = "apt-answers.json"
ENABLE_I386 = "dpkg --add-architecture i386 && apt-get update"


@dataclass(frozen=True)
class DebPackage:
    """One exact package version as apt's index describes it."""

    name: str
    version: str
    sha256: str
    size: int
    depends: str

    def as_manifest(self) -> Dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
        }


def _fields(stanza: str) -> Dict[str, str]:
    fields: Dict[str, str] = {}
    for line in stanza.splitlines():
        match = re.match(r"^([A-Za-z0-9-]+): ?(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2)
    return fields


def _run(command: list, what: str) -> subprocess.CompletedProcess:
    if shutil.which(command[0]) is None:
        raise ImageError(f"{command[0]} not found: {what} needs a Debian host with apt")
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _index_fingerprint() -> str:
    """Names, sizes and times of apt's index files: changes whenever apt-get update does."""
    files = sorted(APT_LISTS.glob("*_Packages*")) if APT_LISTS.is_dir() else []
    facts = [(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files]
    return hashlib.sha256(repr(facts).encode()).hexdigest()


def _apt_show(name: str, memo: Path) -> Dict[str, str]:
    """``apt-cache show`` fields of the candidate, remembered while apt's index is unchanged.

    apt-cache parses every index on each call (1-2 s here, where its binary cache is
    disabled); remembering the answer keeps a cached image build instant.
    """
    fingerprint = _index_fingerprint()
    try:
        remembered = json.loads(memo.read_text())
    except (OSError, ValueError):
        remembered = {}
    if remembered.get("fingerprint") != fingerprint:
        remembered = {"fingerprint": fingerprint, "packages": {}}
    if name not in remembered["packages"]:
        result = _run(["apt-cache", "show", "--no-all-versions", f"{name}:{ARCH}"], "resolving")
        fields = _fields(result.stdout)
        if result.returncode != 0 or "SHA256" not in fields:
            return {}
        remembered["packages"][name] = fields
        memo.parent.mkdir(parents=True, exist_ok=True)
        partial = memo.with_suffix(f".{os.getpid()}")
        partial.write_text(json.dumps(remembered, indent=1, sort_keys=True))
        partial.replace(memo)
    return remembered["packages"][name]


def resolve(name: str, store: Path) -> DebPackage:
    """The candidate version of ``name`` for i386; ImageError naming the fix if unknown.

    Answers are kept in ``store``/apt-answers.json (see ``_apt_show``).
    """
    fields = _apt_show(name, store / MEMO_FILE)
    if not fields:
        raise ImageError(
            f"Debian package {name}:{ARCH} is unknown to apt; enable i386 with: {ENABLE_I386}"
        )
    return DebPackage(
        name,
        fields["Version"],
        fields["SHA256"],
        int(fields.get("Size", 0)),
        fields.get("Depends", ""),
    )


def resolve_kernel(metapackage: str, store: Path) -> DebPackage:
    """The real ``linux-image-6.1.0-N-686`` package a metapackage like linux-image-686 names."""
    meta = resolve(metapackage, store)
    match = re.search(r"(linux-image-[0-9][^ ,(]*)", meta.depends)
    if match is None:
        raise ImageError(
            f"{metapackage} depends on no versioned linux-image package: {meta.depends!r}"
        )
    return resolve(match.group(1), store)


def download(package: DebPackage, store: Path) -> Path:
    """The package's .deb in ``store``, downloaded with apt-get and checked if not there yet.

    The file is named by version and checked against apt's sha256 when it arrives and
    whenever it changed since (``ground.assets``); a damaged one is downloaded again.
    """
    target = store / f"{package.name}_{package.version.replace(':', '%3a')}_{ARCH}.deb"
    if target.exists():
        found = assets.problems(store, {target.name: {"size": package.size,
                                                      "sha256": package.sha256}})
        if not found:
            return target
        print(f"x86lab: {assets.damaged_message('package', store, found)}; downloading "
              "it again", file=sys.stderr)
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store) as scratch:
        result = subprocess.run(
            ["apt-get", "download", f"{package.name}:{ARCH}={package.version}"],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
        debs = list(Path(scratch).glob("*.deb"))
        if result.returncode != 0 or len(debs) != 1:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ImageError(f"apt-get download {package.name}:{ARCH} failed: {last}")
        actual = assets.sha256_file(debs[0])
        if actual != package.sha256:
            raise ImageError(
                f"{debs[0].name}: sha256 {actual} differs from apt's "
                f"{package.sha256}; run apt-get update and retry"
            )
        debs[0].replace(target)
    return target


def extract(deb: Path, destination: Path) -> Path:
    """Unpack a .deb's files (not its scripts) into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    result = _run(["dpkg-deb", "-x", str(deb), str(destination)], "unpacking .deb files")
    if result.returncode != 0:
        raise ImageError(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()}")
    return destination


def installed_version(name: str) -> str:
    """Version of an installed host package; ImageError saying how to install it if absent."""
    result = _run(["dpkg-query", "-W", "-f=${Version}", name], "checking host packages")
    if result.returncode != 0 or not result.stdout.strip():
        raise ImageError(
            f"host package {name} is not installed; install it with: "
            f"apt-get install {name} (or run scripts/setup.sh)"
        )
    return result.stdout.strip()
