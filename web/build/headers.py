"""``vercel.json``: the HTTP headers the demo needs from its host.

- Hashed files (``os/*``, Next's ``_next/static/*``) never change under their name, so a
  year of ``immutable`` caching; the manifest and pages are revalidated every time.
- ``application/wasm`` lets browsers compile v86 while it streams.
- CORS with ``Access-Control-Allow-Headers: range, x-accept-encoding``: v86 sends both on
  its downloads, and a preflight without them fails, which v86 retries forever.
- ``Accept-Ranges`` and exposed ``Content-Range``: lazy disks read the image in pieces.
"""

from __future__ import annotations

from typing import Dict, List

MANIFEST_NAME = "x86lab-manifest.json"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "range, x-accept-encoding",
    "Access-Control-Expose-Headers": "content-length, content-range, accept-ranges",
    "Accept-Ranges": "bytes",
}


def _rule(source: str, headers: Dict[str, str]) -> dict:
    return {"source": source,
            "headers": [{"key": key, "value": value} for key, value in headers.items()]}


def vercel_config() -> dict:
    """The ``vercel.json`` document; later rules win where keys repeat."""
    rules: List[dict] = [
        _rule("/(.*)", CORS),
        _rule("/os/(.*)", {"Cache-Control": IMMUTABLE}),
        _rule("/_next/static/(.*)", {"Cache-Control": IMMUTABLE}),
        _rule("/os/(.*)\\.wasm", {"Content-Type": "application/wasm"}),
        _rule(f"/{MANIFEST_NAME}", {"Cache-Control": REVALIDATE}),
    ]
    return {"cleanUrls": True, "trailingSlash": False, "headers": rules}
