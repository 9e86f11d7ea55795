"""The kernels an image can boot: ``tiny`` (built here) and ``debian`` (Debian's 686).

Each kind is prepared once into its own cache folder, keyed by its inputs, and described
by a ``kernel.json`` there, so building an image with new extras never rebuilds a kernel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

from ground import assets
from images.bootheader import boot_protocol
from images.errors import ImageError

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
    """The kernel prepared earlier in ``folder``, every file hashed against kernel.json
    (it is read only to build an image, so a full check is cheap next to that).

    ImageError naming the folder and ``--rebuild`` if a file is damaged: rebuilding a
    kernel takes minutes, so that is the user's call. A kernel.json from before files
    were recorded gets them recorded now, if its bzImage is one an image recorded.
    """
    remedy = f"rebuild it with: x86lab image build --kernel {kind} --rebuild"
    described = json.loads((folder / DESCRIPTION_FILE).read_text())
    if "files" not in described:
        described["files"] = _file_facts(folder)
        found = _unknown_legacy_bzimage(folder, kind, described["files"])
        if found:
            raise ImageError(assets.damaged_message(f"{kind} kernel", folder, found, remedy))
        _describe(folder, described)
    found = assets.problems(folder, described["files"], full=True)
    if found:
        raise ImageError(assets.damaged_message(f"{kind} kernel", folder, found, remedy))
    bzimage = folder / KERNEL_FILE
    boot_protocol(bzimage)
    modules = tuple((name, folder / "modules" / f"{name}.ko") for name in described["modules"])
    return Kernel(kind, bzimage, modules, described["facts"])


def is_ready(folder: Path) -> bool:
    return (folder / DESCRIPTION_FILE).exists()


def publish(folder: Path, staging: Path, modules: List[str], facts: Dict[str, object]) -> None:
    """Move a finished ``staging`` folder to ``folder`` and describe it, last of all.

    kernel.json is written only after everything else is in place, so a build that is
    interrupted leaves no folder that looks ready. It records each file's size and
    sha256, so that ``load`` can tell a damaged file.
    """
    assets.publish_folder(staging, folder)
    _describe(folder, {"modules": modules, "facts": facts, "files": _file_facts(folder)})


def _unknown_legacy_bzimage(folder: Path, kind: str,
                            files: Dict[str, Dict[str, object]]) -> List[str]:
    """Older kernel folders recorded no hashes, and shared their bzImage with the images
    by hard link: trust the bzImage only if an image's manifest (``<store>/built``)
    recorded its sha256 back when that image was built from it."""
    recorded = set()
    for manifest in (folder.parent.parent / "built").glob(f"{kind}-*/manifest.json"):
        try:
            recorded.add(json.loads(manifest.read_text())["kernel"]["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not recorded or files.get(KERNEL_FILE, {}).get("sha256") in recorded:
        return []
    return [f"{KERNEL_FILE} matches no image built from it"]


def _file_facts(folder: Path) -> Dict[str, Dict[str, object]]:
    return {path.relative_to(folder).as_posix(): assets.facts(path)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name not in (DESCRIPTION_FILE, assets.STAMP_FILE)}


def _describe(folder: Path, described: dict) -> None:
    partial = folder / f"{DESCRIPTION_FILE}.partial"
    partial.write_text(json.dumps(described, indent=2, sort_keys=True) + "\n")
    partial.replace(folder / DESCRIPTION_FILE)
