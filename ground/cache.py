"""Where slow things are kept between runs (images, downloads, corpora).

One folder, outside the checkout so a fresh clone on the same machine reuses it:
``$X86LAB_CACHE`` if set, else ``$XDG_CACHE_HOME/x86lab``, else ``~/.cache/x86lab``.
Each part keeps its own sub-folder and a manifest there, keyed by the hash of its inputs.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence


def cache_root() -> Path:
    explicit = os.environ.get("X86LAB_CACHE")
    if explicit:
        root = Path(explicit)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "x86lab"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(part: str) -> Path:
    """The cache folder of one part (``images``, ``npm``, ``hypothesis``, ...)."""
    path = cache_root() / part
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_file(part: str, *names: str) -> Path:
    """A file's path inside one part's cache folder, with every folder above it created.

    Why: an empty cache (a newcomer's machine, CI with ``X86LAB_CACHE`` on a new folder)
    has none of the sub-folders a warm one has; writing ``cache_dir(p) / "bin" / f`` there
    failed where a warm cache hid it. Builders ask for their file through this helper.
    """
    path = cache_dir(part).joinpath(*names)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class BuildFailed(Exception):
    """A compiler run for the cache failed or could not start: ``command`` is what ran,
    ``output`` the compiler's own words (its stderr, or why it did not start)."""

    def __init__(self, command: Sequence[str], output: str, started: bool) -> None:
        super().__init__(f"{' '.join(command)}: {output}")
        self.command = list(command)
        self.output = output
        self.started = started  # False: the compiler itself was not found or not runnable


def compile_into(target: Path, command: Callable[[Path], Sequence[str]],
                 cwd: Optional[Path] = None, timeout: float = 600.0) -> Path:
    """``target``, built now by ``command(out)`` (a compiler writing the file ``out``) if
    the cache does not hold it yet.

    Why one helper: several parts compile a file into the cache (the native stepper, the
    Unicorn core, conformance programs). Each needs the same two guarantees, and each copy
    of them was a chance to get one wrong: the build is written to a scratch folder beside
    ``target`` and renamed into place, so a failed or interrupted build leaves nothing a
    later run would take for finished, and two processes building at once (pytest
    workers, a campaign's children) each finish whole and the later rename wins.
    """
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        out = Path(scratch) / target.name
        argv = [str(part) for part in command(out)]
        try:
            done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                                  timeout=timeout)
        except OSError as exc:
            raise BuildFailed(argv, str(exc), started=False) from exc
        except subprocess.TimeoutExpired as exc:
            raise BuildFailed(argv, f"no result after {timeout:g} s", started=True) from exc
        if done.returncode != 0 or not out.exists():
            raise BuildFailed(argv, done.stderr.strip() or f"status {done.returncode}",
                              started=True)
        os.replace(out, target)
    return target


REPO_ROOT = Path(__file__).resolve().parent.parent
