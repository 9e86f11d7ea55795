"""A site ``x86lab web build`` wrote, as the commands that measure or inspect it read it."""

from __future__ import annotations

import json
from pathlib import Path

from web.build.errors import BuildError
from web.build.headers import MANIFEST_NAME


def built_manifest(site: Path) -> dict:
    """The site's manifest; a BuildError naming the command to run if ``site`` is not a
    built site."""
    path = site / MANIFEST_NAME
    if not path.exists():
        raise BuildError(f"{site} is not a built site; run: x86lab web build --out {site}")
    return json.loads(path.read_text())
