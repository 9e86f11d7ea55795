"""A built site on ``web.serve`` in a background thread: the browser tests and
``x86lab web measure`` load the page exactly as a user of ``x86lab web serve`` would."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """``folder`` served on a free 127.0.0.1 port; yields its URL (ends with ``/``)."""
    from web.serve.server import make_server

    server = make_server(folder, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
