"""The React front end: ``next build`` with ``output: 'export'`` in ``web/site`` writes a
plain static folder (``web/site/out``) that the assembler copies as the site's root."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

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


EARLY_MARK = "window.__x86labEarly"
"""Names the inline ``<head>`` script of ``components/earlyStart.js`` (app/layout.js)."""
_SCRIPT = re.compile(r"<script>(?:(?!</script>).)*?</script>", re.S)
_STYLESHEET = re.compile(r'<link rel="stylesheet"[^>]*>')


def early_script_first(html: str) -> str:
    """``html`` with the early-start ``<head>`` script moved before the first stylesheet.

    Why: Next.js writes a layout's ``<head>`` children after its own stylesheet links, and a
    browser runs an inline script only once the stylesheets before it have loaded (they
    block scripts), so the manifest request and ``new Worker`` waited for the CSS (35-60 ms
    after navigation on this host at load ~5). The script touches no styles and needs no
    DOM beyond itself; React's hydration leaves ``<head>``'s order alone. The charset
    ``<meta>`` stays first. Pages without the script or a stylesheet come back unchanged.
    """
    script = next((m for m in _SCRIPT.finditer(html) if EARLY_MARK in m.group(0)), None)
    link = _STYLESHEET.search(html)
    if script is None or link is None or link.start() > script.start():
        return html
    moved = html[: script.start()] + html[script.end():]
    return moved[: link.start()] + script.group(0) + moved[link.start():]


STATE_HINT_ID = "x86lab-state"
"""The id of the JSON ``<script>`` the early-start script reads (components/earlyStart.js)."""


def with_state_hint(html: str, state: Optional[dict]) -> str:
    """``html`` with the saved state's ``file``, ``size`` and ``sha256`` (the manifest's
    ``state``) in a JSON ``<script>`` right before the early-start script.

    Why: that script can then request the state while the page is parsed, instead of after
    the manifest's answer (94-228 ms after navigation on this host at load 5-7) and the
    worker thread's start; it uses the response only if the manifest names the same file,
    size and sha256, so a manifest edited in place wins. No state, or no early-start
    script: ``html`` unchanged.
    """
    if state is None:
        return html
    return _hint(html, STATE_HINT_ID, {key: state[key] for key in ("file", "size", "sha256")})


def _hint(html: str, hint_id: str, facts: dict) -> str:
    """``html`` with ``facts`` as a JSON ``<script id=hint_id>`` right before the early-start
    script (which reads it as the page is parsed); no such script: ``html`` unchanged."""
    script = next((m for m in _SCRIPT.finditer(html) if EARLY_MARK in m.group(0)), None)
    if script is None:
        return html
    text = json.dumps(facts).replace("<", "\\u003c")  # never a "</script>" inside
    hint = f'<script id="{hint_id}" type="application/json">{text}</script>'
    return html[: script.start()] + hint + html[script.start():]


FILES_HINT_ID = "x86lab-files"
"""The id of the JSON ``<script>`` naming the files under ``os/`` (components/earlyStart.js)."""
HINTED_FILES = ("libv86", "wasm", "profiler", "bios", "bzimage", "initrd", "disk")
"""What the early-start script may request before the manifest's answer: v86 itself (every
visit), a cold boot's files (only a page that boots cold requests them) and the lazy
disk, whose first sector the Range probe reads (every visit with a disk)."""


def with_files_hint(html: str, assets: dict) -> str:
    """``html`` with the hashed names of v86's files and of a cold boot's files (the
    manifest's ``assets``: ``{name: {"file": ...}}``) in a JSON ``<script>`` right before
    the early-start script.

    Why: the early-start script then has the worker load libv86 and compiles the wasm
    while the page is parsed, and with ``?boot=cold`` requests SeaBIOS, the kernel and the
    initramfs at once, instead of after the manifest's answer (50-230 ms after navigation
    on this host); it also makes the disk's Range probe then (``disk``: the manifest's
    ``disk`` entry), whose answer the machine's start waits for. It uses a file only where
    the manifest names the same one. Assets missing from ``assets`` are left out; no
    early-start script: ``html`` unchanged.
    """
    names = {name: assets[name]["file"] for name in HINTED_FILES if name in assets}
    return _hint(html, FILES_HINT_ID, names)
