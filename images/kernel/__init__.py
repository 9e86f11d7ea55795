"""The kernels an image can boot: ``tiny`` (built here) and ``debian`` (Debian's 686).

Each kind is prepared once into its own cache folder, keyed by its inputs, and described
by a ``kernel.json`` there, so building an image with new extras never rebuilds a kernel.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

from images.bootheader import boot_protocol

KERNEL_FILE = "bzImage"
DESCRIPTION_FILE = "kernel.json"


@dataclass(frozen=True)
class Kernel:
    """A ready kernel: its bzImage, modules to load (in order) and facts for the manifest."""

    kind: str
    bzimage: Path
    modules: Tuple[Tuple[str, Path], ...] = ()
    facts: Dict[str, object] = field(default_factory=dict)


def load(folder: Path, kind: str) -> Kernel:
    """The kernel prepared earlier in ``folder``; ImageError if its bzImage is corrupt."""
    described = json.loads((folder / DESCRIPTION_FILE).read_text())
    bzimage = folder / KERNEL_FILE
    boot_protocol(bzimage)
    modules = tuple((name, folder / "modules" / f"{name}.ko") for name in described["modules"])
    return Kernel(kind, bzimage, modules, described["facts"])


def is_ready(folder: Path) -> bool:
    return (folder / DESCRIPTION_FILE).exists()


def publish(folder: Path, staging: Path, modules: List[str], facts: Dict[str, object]) -> None:
    """Move a finished ``staging`` folder to ``folder`` and describe it, last of all.

    kernel.json is written only after everything else is in place, so a build that is
    interrupted leaves no folder that looks ready.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(folder)
    text = json.dumps({"modules": modules, "facts": facts}, indent=2, sort_keys=True)
    (folder / DESCRIPTION_FILE).write_text(text + "\n")
