"""A small Debian package repository for the guest: i386 .debs from Debian, an index, and
a server on the host's 127.0.0.1 that the guest reaches only through the relay.

The guest's ``x86lab-get`` (``images/rootfs/x86lab-get``) reads the index, fetches a
package, checks its sha256 and installs it with BusyBox's dpkg. The packages are the
project's cached downloads (``images.debs``: resolved by apt, checked against apt's
sha256), never files in the repository. The server listens on 127.0.0.1, which the relay
refuses as a destination; the one way in is the operator's exact redirect of the guest's
stand-in address (``guest_check.redirect_to``), so serving packages opens nothing else.

Layout of the folder, as a Debian "flat" repository has it::

    Packages                       one stanza per package: its control fields, then
                                   Filename, Size, SHA256 (as dpkg-scanpackages writes)
    pool/NAME_VERSION_i386.deb     the packages (VERSION without its epoch, as Debian's
                                   pool names are)
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

from web.relay.guest_check import STAND_IN

DEFAULT_PACKAGES = ("bash-static",)
"""Statically linked, so it runs in the BusyBox image as it is; 1.1 MB."""
INDEX = "Packages"
POOL = "pool"
GUEST_URL = f"http://{STAND_IN}/"
"""What x86lab-get fetches by default: the stand-in the relay maps to the server."""


class RepositoryError(Exception):
    """A package could not be resolved, downloaded or read; the message says which."""


@dataclass(frozen=True)
class RepoPackage:
    """One package as the index lists it."""

    name: str
    version: str
    filename: str
    """Path inside the repository, e.g. ``pool/bash-static_5.2.15-2+b13_i386.deb``."""
    size: int
    sha256: str


def pool_name(name: str, version: str) -> str:
    """``pool/NAME_VERSION_i386.deb`` with the epoch (``1:``) left out, as Debian does:
    the colon would need escaping in a URL and an HTTP server would unescape it."""
    return f"{POOL}/{name}_{version.split(':', 1)[-1]}_i386.deb"


def control_fields(deb: Path) -> str:
    """The package's control stanza (``dpkg-deb -f``), without a trailing blank line."""
    try:
        done = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True,
                              check=False, timeout=60)
    except FileNotFoundError:
        raise RepositoryError("dpkg-deb not found: the repository needs a Debian host") \
            from None
    if done.returncode != 0 or not done.stdout.startswith("Package:"):
        raise RepositoryError(f"dpkg-deb -f {deb.name} failed: {done.stderr.strip()}")
    return done.stdout.rstrip("\n")


def stanza(control: str, package: RepoPackage) -> str:
    """One index stanza: the control fields, then where the file is and what it hashes to."""
    return (f"{control}\nFilename: {package.filename}\nSize: {package.size}\n"
            f"SHA256: {package.sha256}\n")


def add_deb(deb: Path, folder: Path) -> Tuple[RepoPackage, str]:
    """Copy ``deb`` into ``folder``'s pool; (its index entry, its stanza)."""
    control = control_fields(deb)
    fields = dict(line.split(": ", 1) for line in control.splitlines()
                  if ": " in line and not line.startswith(" "))
    filename = pool_name(fields["Package"], fields["Version"])
    target = folder / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(deb, target)
    data = target.read_bytes()
    package = RepoPackage(fields["Package"], fields["Version"], filename, len(data),
                          hashlib.sha256(data).hexdigest())
    return package, stanza(control, package)


def cached_debs(names: Sequence[str]) -> List[Path]:
    """Each named i386 package's .deb, downloaded once into the image builder's cache and
    checked against apt's sha256 there (``images.debs``)."""
    from ground.cache import cache_dir
    from images import debs
    from images.errors import ImageError

    store = cache_dir("images")
    found = []
    for name in names:
        try:
            found.append(debs.download(debs.resolve(name, store), store / "debs"))
        except ImageError as exc:
            raise RepositoryError(f"package {name}: {exc}") from None
    return found


def write_repository(debs: Sequence[Path], folder: Path) -> List[RepoPackage]:
    """Fill ``folder`` with the pool and the index of ``debs``, sorted by package name."""
    entries = sorted((add_deb(deb, folder) for deb in debs), key=lambda e: e[0].name)
    (folder / INDEX).write_text("\n".join(text for _, text in entries))
    return [package for package, _ in entries]


@dataclass(frozen=True)
class ServedRepository:
    url: str
    """Where the host reaches it: ``http://127.0.0.1:PORT/``."""
    port: int
    folder: Path
    packages: Tuple[RepoPackage, ...]


@contextlib.contextmanager
def serving_repository(debs: Sequence[Path], port: int = 0) -> Iterator[ServedRepository]:
    """A repository of ``debs`` (``cached_debs(names)``) in a temporary folder, served by
    ``web.serve`` on 127.0.0.1:``port`` (0: any free port) in a background thread."""
    from web.serve.server import make_server

    with tempfile.TemporaryDirectory(prefix="x86lab-repo-") as scratch:
        folder = Path(scratch)
        packages = write_repository(debs, folder)
        try:
            server = make_server(folder, "127.0.0.1", port, quiet=True)
        except OSError as exc:
            raise RepositoryError(f"cannot serve the repository on 127.0.0.1:{port}: "
                                  f"{exc.strerror or exc}") from None
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            bound = server.server_address[1]
            yield ServedRepository(f"http://127.0.0.1:{bound}/", bound, folder,
                                   tuple(packages))
        finally:
            server.shutdown()
            server.server_close()
