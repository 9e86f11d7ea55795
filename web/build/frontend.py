"""The React front end: ``next build`` with ``output: 'export'`` in ``web/site`` writes a
plain static folder (``web/site/out``) that the assembler copies as the site's root."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from web.build.errors import BuildError

SITE = Path(__file__).resolve().parent.parent / "site"
EXPORT = SITE / "out"
NPM_TIMEOUT_S = 600


def export_site(site: Path = SITE) -> Path:
    """Run the static export and return its folder; BuildError with npm's tail on failure."""
    if shutil.which("npm") is None:
        raise BuildError("npm not found; install Node.js and npm (scripts/setup.sh)")
    if not (site / "node_modules" / "next").is_dir():
        raise BuildError(f"the site's packages are not installed; run: (cd {site} && npm ci)")
    env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1"}
    try:
        done = subprocess.run(["npm", "run", "build"], cwd=site, env=env, text=True,
                              capture_output=True, timeout=NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BuildError(f"next build took over {NPM_TIMEOUT_S} s in {site}") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-12:]
        raise BuildError("next build failed in {}:\n{}".format(site, "\n".join(tail)))
    export = site / "out"
    if not (export / "index.html").exists():
        raise BuildError(f"next build wrote no {export}/index.html; is output: 'export' set?")
    return export
