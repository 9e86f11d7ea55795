"""Start the static server: a ThreadingHTTPServer whose handler knows its root folder."""

from __future__ import annotations

import os
import socket
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

from web.serve.handler import StaticHandler


class StaticServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must not keep the process alive at exit
    request_queue_size = 128  # many parallel range requests at page load


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 0,
                quiet: bool = False,
                on_body: Optional[Callable[[str, int, int], None]] = None) -> StaticServer:
    """Bind (port 0: any free port, read ``server.server_address``); serve with
    ``serve_forever``. Raises NotADirectoryError / OSError for the caller to report.
    ``on_body(name, start, length)`` hears of every body sent (see StaticHandler)."""
    root = Path(os.path.realpath(directory))
    if not root.is_dir():
        raise NotADirectoryError(f"{directory}: not a directory")
    handler = type("BoundStaticHandler", (StaticHandler,),
                   {"root": root, "quiet": quiet, "on_body": staticmethod(on_body)
                    if on_body else None})
    server_class = StaticServer
    if ":" in host:  # an IPv6 literal such as ::1 needs an IPv6 socket
        server_class = type("StaticServer6", (StaticServer,), {"address_family": socket.AF_INET6})
    return server_class((host, port), handler)
