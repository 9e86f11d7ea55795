"""One boot per engine for every suite: the suites' files go into the image as an overlay
(``images.build.ensure_image``), so nothing large crosses the slow serial console inward;
results come back compressed (gzip in the guest, base64 over the console).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import shutil
from pathlib import Path
from typing import Dict, Iterator, Optional

from ground.cache import cache_dir
from harness.guest import Guest, start_guest

GUEST_DIR = "/opt/x86lab"  # where the suites' files sit in the guest
MEMORY_MIB = 256


def overlay_folder(files: Dict[str, bytes]) -> Path:
    """A folder (in the cache, named by its contents' hash) holding ``files`` under
    ``GUEST_DIR``; executables are those whose content starts with an ELF or #! magic."""
    hasher = hashlib.sha256()
    for name in sorted(files):
        hasher.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    folder = cache_dir("conformance") / "overlays" / hasher.hexdigest()[:16]
    if folder.exists():
        return folder
    partial = folder.with_suffix(".tmp")
    shutil.rmtree(partial, ignore_errors=True)
    for name, data in files.items():
        path = partial / GUEST_DIR.strip("/") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755 if data[:4] == b"\x7fELF" or data[:2] == b"#!" else 0o644)
    partial.replace(folder)
    return folder


@contextlib.contextmanager
def booted(engine: str, kernel: str, files: Dict[str, bytes],
           log_dir: Optional[Path] = None) -> Iterator[Guest]:
    """A guest of ``kernel`` on ``engine`` whose image carries ``files`` in ``GUEST_DIR``."""
    from images.build import ensure_image

    image = ensure_image(kernel=kernel, overlays=(str(overlay_folder(files)),))
    guest = start_guest(engine, image, kernel, MEMORY_MIB,
                        log_dir=log_dir or cache_dir("conformance") / "consoles")
    try:
        yield guest
    finally:
        guest.stop()


def fetch_text(guest: Guest, path: str, timeout: float = 600.0) -> str:
    """A guest text file's contents, gzip-compressed for the trip over the console."""
    packed = f"{path}.gz"
    guest.console.run_check(f"gzip -c {path} > {packed}", timeout=timeout)
    return gzip.decompress(guest.console.read_file(packed, timeout=timeout)).decode(
        "utf-8", "replace")


class GuestHolder:
    """The current boot of one engine for the suites of a run, rebooted (same image and
    files) when a vector or a suite kills it; ``log_dir`` gets one console log per boot."""

    def __init__(self, engine: str, kernel: str, files: Dict[str, bytes],
                 log_dir: Path) -> None:
        self.engine, self.kernel, self.files, self.log_dir = engine, kernel, files, log_dir
        self.stack = contextlib.ExitStack()
        self.guest: Optional[Guest] = None

    def boot(self) -> Guest:
        self.guest = self.stack.enter_context(booted(self.engine, self.kernel, self.files,
                                                     self.log_dir))
        return self.guest

    def stop(self) -> None:
        self.stack.close()
        self.stack = contextlib.ExitStack()

    def reboot(self) -> Guest:
        self.stop()
        return self.boot()
