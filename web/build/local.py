"""A built site on ``web.serve`` in a background thread: the browser tests and
``x86lab web measure`` load the page exactly as a user of ``x86lab web serve`` would."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional


@contextlib.contextmanager
def serving(folder: Path,
            on_body: Optional[Callable[[str, int, int], None]] = None) -> Iterator[str]:
    """``folder`` served on a free 127.0.0.1 port; yields its URL (ends with ``/``).
    ``on_body(name, start, length)`` hears of every body sent (web.serve's hook)."""
    from web.serve.server import make_server

    server = make_server(folder, "127.0.0.1", 0, quiet=True, on_body=on_body)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
