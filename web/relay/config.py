"""What one relay instance is told at start-up: allowlist, origins, limits, resolver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

from web.relay.destinations import Resolver, system_resolver
from web.relay.limits import Limits
from web.relay.policy import Allowlist


@dataclass(frozen=True)
class RelayConfig:
    allowlist: Allowlist = field(default_factory=Allowlist)
    origins: Tuple[str, ...] = ()
    """Accepted Origin headers; empty means the safe default (see ``web.relay.origin``)."""
    limits: Limits = field(default_factory=Limits)
    resolver: Resolver = system_resolver
    ping_interval: float = 20.0
    """WebSocket keepalive; a client that stops answering pings is dropped after as long."""
    max_message: int = 256 * 1024
    """Largest WebSocket message accepted; v86 sends one TCP segment per DATA."""
