"""``vercel.json``: the HTTP headers the demo needs from its host.

- Hashed files (``os/*``, Next's ``_next/static/*``) never change under their name, so a
  year of ``immutable`` caching; the manifest and pages are revalidated every time.
- ``application/wasm`` lets browsers compile v86 while it streams.
- CORS with ``Access-Control-Allow-Headers: range, x-accept-encoding``: v86 sends both on
  its downloads, and a preflight without them fails, which v86 retries forever.
- ``Accept-Ranges`` and exposed ``Content-Range``: lazy disks read the image in pieces.
- Precompressed files (``precompress.py``): a request for ``/F`` whose ``Accept-Encoding``
  names ``br`` is rewritten to ``/F.br`` and answered with ``Content-Encoding: br`` and
  ``Vary: Accept-Encoding``; other clients get ``/F`` as it is. Brotli only: every browser
  accepts it over https, and one encoding keeps the header rules from overlapping.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

from web.serve.content_types import content_type

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


ACCEPTS_BROTLI = [{"type": "header", "key": "accept-encoding", "value": ".*\\bbr\\b.*"}]


def _brotli_rules(brotli: Sequence[str]) -> tuple:
    """Rewrites and header rules serving ``F.br`` for each ``F`` in ``brotli``."""
    rewrites, headers = [], []
    for name in brotli:
        source = f"/{name}"
        rewrites.append({"source": source, "has": ACCEPTS_BROTLI,
                         "destination": f"{source}.br"})
        rule = _rule(source, {"Content-Encoding": "br", "Vary": "Accept-Encoding",
                              "Content-Type": content_type(name)})
        headers.append({**rule, "has": ACCEPTS_BROTLI})
        headers.append(_rule(source, {"Vary": "Accept-Encoding"}))
    return rewrites, headers


def vercel_config(brotli: Sequence[str] = ()) -> dict:
    """The ``vercel.json`` document; later rules win where keys repeat. ``brotli``: site
    paths that have a ``.br`` sibling."""
    rules: List[dict] = [
        _rule("/(.*)", CORS),
        _rule("/os/(.*)", {"Cache-Control": IMMUTABLE}),
        _rule("/_next/static/(.*)", {"Cache-Control": IMMUTABLE}),
        _rule("/os/(.*)\\.wasm", {"Content-Type": "application/wasm"}),
        _rule(f"/{MANIFEST_NAME}", {"Cache-Control": REVALIDATE}),
    ]
    rewrites, encoded = _brotli_rules(brotli)
    return {"cleanUrls": True, "trailingSlash": False, "headers": rules + encoded,
            "rewrites": rewrites}
