"""``x86lab web measure DIR --bytes``: where a visitor's bytes go.

One page load of each default kind (v86 in the worker: cold, and from the saved state when
the site has one) lists every file it fetched with its bytes on the wire and its
Content-Encoding; then the saved state, most of what a restored page downloads, is split
into what it holds (``web.build.state_contents``). Together they say which bytes a smaller
download would have to come from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, Optional

from web.build.built import built_manifest
from web.build.local import serving
from web.build.measure import PAGE_KINDS, measure_page
from web.build.state_contents import print_state_contents, state_contents

KINDS = ("cold worker", "state worker")
"""The page's default engine (the worker), from power-on and from the state."""


def measure_bytes(site: Path) -> dict:
    """{"loads": {kind: {"bytes", "files"}}, "state": state_contents or None}."""
    has_state = bool(built_manifest(site).get("state"))
    kinds = [kind for kind in KINDS if has_state or "state" not in kind]
    loads: Dict[str, dict] = {}
    with serving(site) as url:
        for kind in kinds:
            figures = measure_page(url + PAGE_KINDS[kind])
            files = sorted(figures["files"], key=lambda file: -file["bytes"])
            loads[kind] = {"bytes": figures["bytes"], "files": files}
    return {"loads": loads, "state": state_contents(site) if has_state else None}


def print_bytes(figures: dict, as_json: bool = False, out: Optional[object] = None) -> None:
    """Each load's files, largest first, then the state's parts (or all of it as JSON)."""
    out = out or sys.stdout
    if as_json:
        print(json.dumps(figures, indent=1), file=out)
        return
    for kind, load in figures["loads"].items():
        print(f"{kind}: {load['bytes']:,} bytes", file=out)
        for file in load["files"]:
            print(f"  {file['bytes']:>11,}  {file['encoding'] or '-':<5} {file['name']}",
                  file=out)
    if figures["state"] is not None:
        print(file=out)
        print_state_contents(figures["state"], out=out)
