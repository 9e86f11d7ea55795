"""Where slow things are kept between runs (images, downloads, corpora).

One folder, outside the checkout so a fresh clone on the same machine reuses it:
``$X86LAB_CACHE`` if set, else ``$XDG_CACHE_HOME/x86lab``, else ``~/.cache/x86lab``.
Each part keeps its own sub-folder and a manifest there, keyed by the hash of its inputs.
"""

from __future__ import annotations

import os
from pathlib import Path


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


REPO_ROOT = Path(__file__).resolve().parent.parent
