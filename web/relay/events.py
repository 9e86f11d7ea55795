"""Structured log lines: one JSON object per event, so refusals can be counted and grepped.

Every refusal and every protocol error the relay sees is logged here with the client, the
stream and the reason, on the ``x86lab.relay`` logger at WARNING (refusals) or INFO.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, fields
from typing import Any

LOG = logging.getLogger("x86lab.relay")


def log_event(event: str, level: int = logging.INFO, **details: Any) -> None:
    """Log ``{"event": ..., "t": unix time, **details}`` as one line of JSON."""
    if LOG.isEnabledFor(level):
        record = {"event": event, "t": round(time.time(), 3), **details}
        LOG.log(level, json.dumps(record, default=str, sort_keys=False))


def refused(event: str, **details: Any) -> None:
    log_event(event, logging.WARNING, **details)


@dataclass
class RelayStats:
    """Running totals, read by the benchmark and the tests (no clock in here)."""

    connections: int = 0
    connections_refused: int = 0
    streams: int = 0
    streams_refused: int = 0
    protocol_errors: int = 0
    bytes_to_clients: int = 0
    bytes_from_clients: int = 0
    open_streams: int = 0
    open_connections: int = 0

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
