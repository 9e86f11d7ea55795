"""The request handler: static files with Range, CORS, caching headers and no traversal.

Every response, errors included, carries the CORS headers, because a browser hides the
status of a cross-origin response without them and a failing disk fetch in v86 would
then be undiagnosable. Bodies go out with ``socket.sendfile`` so large disk images
cost no Python-level copying.
"""

from __future__ import annotations

import os
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Callable, Optional, Set, Tuple
from urllib.parse import unquote, urlsplit

from web.serve.caching import cache_control
from web.serve.content_types import content_type
from web.serve.ranges import ByteRange, Unsatisfiable, parse_range

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "range, x-accept-encoding",
    "Access-Control-Expose-Headers": "content-range, content-length, accept-ranges",
}
SIBLINGS = {"br": ".br", "gzip": ".gz"}
"""Precompressed siblings a file may have (``web/build/precompress.py``), preferred first."""
PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Max-Age": "86400",
}


def accepted_encodings(header: str) -> Set[str]:
    """Content codings an ``Accept-Encoding`` value accepts (RFC 9110 s12.5.3): the
    listed tokens whose q-value is not 0 (``*`` is not expanded: only named ones count)."""
    accepted = set()
    for item in header.split(","):
        token, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if token and quality > 0:
            accepted.add(token.strip().lower())
    return accepted


def resolve(root: Path, url_path: str) -> Optional[Path]:
    """The file a URL path names inside ``root``, or None if it names nothing servable.

    Refused: ``..`` segments, dot-files (``.git``), NUL bytes, backslashes, any path
    whose real location (after symlinks) is outside ``root``, and any the file system
    cannot look up (a name over 255 bytes, a path over PATH_MAX): those name nothing.
    """
    path = unquote(urlsplit(url_path).path)
    if "\x00" in path or "\\" in path:
        return None
    parts = [p for p in path.split("/") if p]
    if any(p == ".." or p.startswith(".") for p in parts):
        return None
    candidate = root.joinpath(*parts) if parts else root
    try:
        real = Path(os.path.realpath(candidate))
        if real != root and root not in real.parents:
            return None
        if real.is_dir():
            real = real / "index.html"
        return real if real.is_file() else None
    except (OSError, ValueError):  # ENAMETOOLONG, and the like
        return None


class StaticHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Every reply, errors about the request line included, starts with a status line:
    # http.server would answer a versionless or "HTTP/0.9" request with a bare body, with
    # no status, length or CORS headers, which no browser asks for and no client can check.
    default_request_version = "HTTP/1.0"
    server_version = "x86lab-serve"
    timeout = 60  # a client that stalls mid-request frees its thread after this
    root: Path = Path(".")
    quiet = False
    on_body: Optional[Callable[[str, int, int], None]] = None
    """Called with (file name relative to root, first byte, length) for each body sent:
    lets tests see exactly which bytes of a lazy disk a page fetched."""

    def _asks_for_http_0(self) -> bool:
        return self.request_version.partition("/")[2].split(".")[0].lstrip("0") == ""

    def parse_request(self) -> bool:
        """http.server's parsing, refusing HTTP/0.x with 505 (see default_request_version)."""
        if not super().parse_request():
            return False
        if self._asks_for_http_0():
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/0.x is not served")
            return False
        return True

    def send_error(self, code: int, message: Optional[str] = None,
                   explain: Optional[str] = None) -> None:
        """http.server's error page, with a status line even when the request line named
        HTTP/0.9 (http.server checks that version before it knows the line is bad)."""
        if self._asks_for_http_0():
            self.request_version = self.default_request_version
        super().send_error(code, message, explain)

    # -- verbs -----------------------------------------------------------------------
    def do_OPTIONS(self) -> None:  # noqa: N802 - the http.server naming convention
        self.send_response(HTTPStatus.NO_CONTENT)
        self._common_headers({**PREFLIGHT, "Content-Length": "0"})
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(send_body=True)

    # -- the work ---------------------------------------------------------------------
    def _serve(self, send_body: bool) -> None:
        named = resolve(self.root, self.path)
        path, encoding, varies = self._negotiate(named) if named else (None, None, False)
        try:
            stat = path.stat() if path is not None else None
        except OSError:  # removed since resolve() saw it
            stat = None
        if path is None or stat is None:
            self._status_only(HTTPStatus.NOT_FOUND, send_body)
            return
        size = stat.st_size
        etag = f'"{stat.st_mtime_ns:x}-{size:x}{"-" + encoding if encoding else ""}"'
        last_modified = formatdate(stat.st_mtime, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified,
                   "Cache-Control": cache_control(named.name),
                   "Content-Type": content_type(named.name)}
        if encoding:
            headers["Content-Encoding"] = encoding
        if varies:
            headers["Vary"] = "Accept-Encoding"
        if etag in [t.strip() for t in self.headers.get("If-None-Match", "").split(",")]:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self._common_headers(headers)
            self.end_headers()
            return
        decision = None
        if self._if_range_holds(etag, stat.st_mtime):
            decision = parse_range(self.headers.get("Range"), size)
        if isinstance(decision, Unsatisfiable):
            self._status_only(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, send_body,
                              {"Content-Range": decision.content_range(size)})
            return
        span = decision if isinstance(decision, ByteRange) else ByteRange(0, size - 1)
        if isinstance(decision, ByteRange):
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            headers["Content-Range"] = decision.content_range(size)
        else:
            self.send_response(HTTPStatus.OK)
        headers["Content-Length"] = str(span.length if size else 0)
        self._common_headers(headers)
        self.end_headers()
        if send_body and size:
            if self.on_body is not None:
                self.on_body(path.relative_to(self.root).as_posix(), span.start, span.length)
            with path.open("rb") as body:
                try:
                    self.connection.sendfile(body, span.start, span.length)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client left mid-body: not an error

    def _negotiate(self, path: Path) -> Tuple[Path, Optional[str], bool]:
        """The file to send for ``path``: a precompressed sibling (``NAME.br``,
        ``NAME.gz``, see ``web/build/precompress.py``) when the client accepts its
        encoding and asked for no Range (a range of an encoded body is not the file's),
        else ``path`` itself; its Content-Encoding; whether the answer depends on
        Accept-Encoding (then ``Vary`` says so, for caches)."""
        siblings = [(token, path.with_name(path.name + suffix))
                    for token, suffix in SIBLINGS.items()]
        siblings = [(token, sibling) for token, sibling in siblings if sibling.is_file()]
        if not siblings:
            return path, None, False
        if self.headers.get("Range") is None:
            accepted = accepted_encodings(self.headers.get("Accept-Encoding", ""))
            for token, sibling in siblings:
                if token in accepted:
                    return sibling, token, True
        return path, None, True

    def _if_range_holds(self, etag: str, mtime: float) -> bool:
        """If-Range (RFC 9110 s13.1.5): honour Range only if the file is unchanged."""
        validator = self.headers.get("If-Range")
        if not validator:
            return True
        if validator.startswith('"'):
            return validator == etag
        try:
            return int(parsedate_to_datetime(validator).timestamp()) == int(mtime)
        except (TypeError, ValueError):
            return False

    def _common_headers(self, extra: dict) -> None:
        for name, value in {**CORS, "Accept-Ranges": "bytes", **extra}.items():
            self.send_header(name, value)

    def _status_only(self, status: HTTPStatus, send_body: bool,
                     extra: Optional[dict] = None) -> None:
        body = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        self._common_headers({"Content-Type": "text/plain; charset=utf-8",
                              "Content-Length": str(len(body)), "Cache-Control": "no-store",
                              **(extra or {})})
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if not self.quiet:
            super().log_message(format, *args)
