"""Which web pages may open the relay: the Origin check on the WebSocket handshake.

Browsers always send ``Origin``; scripts and Node (the harness's v86) usually send none.
The check protects visitors' browsers from being used by other sites, so:

- a request without ``Origin`` is accepted (a non-browser client could forge any Origin,
  so refusing it would add no safety, and the Node harness needs it);
- with ``--origin`` given, only those exact origins are accepted (``*`` accepts any);
- with none given, the safe default accepts only pages served from this machine:
  ``http(s)://localhost``, ``127.0.0.1`` or ``[::1]`` on any port. A deployment names
  its site explicitly, e.g. ``--origin https://x86lab.example``.
"""

from __future__ import annotations

from typing import Optional, Sequence
from urllib.parse import urlsplit

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def normalise(origin: str) -> str:
    """``HTTPS://Example.org:443/`` and ``https://example.org`` name the same origin."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    default_port = {"http": 80, "https": 443}.get(scheme)
    try:
        port = parts.port
    except ValueError:
        return origin
    shown = f"[{host}]" if ":" in host else host
    suffix = "" if port in (None, default_port) else f":{port}"
    return f"{scheme}://{shown}{suffix}"


def origin_refusal(origin: Optional[str], allowed: Sequence[str]) -> Optional[str]:
    """Why a handshake with this Origin header must be refused, or None to accept it."""
    if origin is None:
        return None
    if allowed:
        if "*" in allowed or normalise(origin) in {normalise(a) for a in allowed}:
            return None
        return f"origin {origin!r} not in --origin list"
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and (parts.hostname or "") in LOCAL_HOSTS:
        return None
    return (f"origin {origin!r} refused: without --origin only pages from localhost "
            "are accepted")
