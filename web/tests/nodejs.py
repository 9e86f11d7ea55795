"""Run one of the page's ES modules in Node with a small driver script: the page's logic
(stage tracking, saved-state checks, relay choice) is tested without a browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

COMPONENTS = Path(__file__).resolve().parents[1] / "site" / "components"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")


def run_module(name: str, driver: str, tmp_path: Path, *args: str, timeout: int = 60) -> Any:
    """Copy ``components/NAME.js`` to an .mjs (the site's package is not "type": "module"),
    run ``driver`` with the module's URL as ``process.argv[1]`` and ``args`` after it, and
    return the JSON the driver printed last."""
    module = tmp_path / f"{name}.mjs"
    module.write_bytes((COMPONENTS / f"{name}.js").read_bytes())
    done = subprocess.run(["node", "--input-type=module", "-e", driver, module.as_uri(), *args],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
