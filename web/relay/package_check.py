"""The package check, shared by the Node-level and browser tests: which package the guest
installs, what the host expects of it, the shell lines the guest runs, and a tampered
corner of the repository the guest must refuse.

Expectations come from the host's own tools, not from the guest's path: the installed
file's sha256 is hashlib's over the file Debian's ``dpkg-deb -x`` (the host's, not
BusyBox's) extracts from the same .deb, and bash reports its upstream version (the
Debian version up to its revision) as ``$BASH_VERSION`` = ``UPSTREAM(1)-release``.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from web.relay.guest_check import STAND_IN
from web.relay.repository import RepoPackage, stanza

PACKAGE = "bash-static"
INSTALLED = "/bin/bash-static"
"""Where the package puts its program (``dpkg-deb -c``: ./bin/bash-static)."""
TAMPERED_FOLDER = "tampered"
TAMPERED_NAME = "x86lab-tampered"


@dataclass(frozen=True)
class Expected:
    sha256: str
    """Of the program as the host's dpkg-deb extracts it."""
    bash_version: str
    """``$BASH_VERSION`` the installed bash must print, e.g. ``5.2.15(1)-release``."""


def expected(deb: Path, version: str) -> Expected:
    """What the guest must report for ``deb`` (package version ``version``)."""
    from images.debs import extract

    with tempfile.TemporaryDirectory() as scratch:
        tree = extract(deb, Path(scratch))
        digest = hashlib.sha256((tree / INSTALLED.lstrip("/")).read_bytes()).hexdigest()
    upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]
    return Expected(digest, f"{upstream}(1)-release")


def install_and_hash() -> str:
    """Shell: install the package with the image's x86lab-get from the repository behind
    the stand-in, then print the sha256 of the file it installed."""
    return f"x86lab-get {PACKAGE} && sha256sum {INSTALLED}"


def run_installed() -> str:
    """Shell: run the installed bash; it prints ``bash=`` and its version."""
    return f"{INSTALLED} -c 'echo \"bash=$BASH_VERSION\"'"


def write_tampered(repository: Path) -> None:
    """A second index under ``repository``/tampered/ naming a file whose bytes are not the
    ones its SHA256 field describes (as if altered on the server or on the way)."""
    folder = repository / TAMPERED_FOLDER
    filename = f"pool/{TAMPERED_NAME}_1.0_i386.deb"
    (folder / "pool").mkdir(parents=True, exist_ok=True)
    served = b"!<arch>\naltered bytes\n"
    (folder / filename).write_bytes(served)
    listed = RepoPackage(TAMPERED_NAME, "1.0", filename, len(served),
                         hashlib.sha256(b"!<arch>\noriginal bytes\n").hexdigest())
    control = f"Package: {TAMPERED_NAME}\nVersion: 1.0\nArchitecture: i386"
    (folder / "Packages").write_text(stanza(control, listed))


TAMPERED_REFUSED = "status=1 listed=0"
"""What ask_for_tampered prints when x86lab-get failed and dpkg never listed the package
(not a substring of the command itself, which a terminal echoes)."""


def ask_for_tampered() -> str:
    """Shell: x86lab-get the tampered package; print its status and how many file lists
    dpkg has for it."""
    return (f"x86lab-get -r http://{STAND_IN}/{TAMPERED_FOLDER}/ {TAMPERED_NAME}; s=$?; "
            f"echo \"status=$s listed=$(ls /var/lib/dpkg/info/{TAMPERED_NAME}.list "
            "2>/dev/null | wc -l)\"")
