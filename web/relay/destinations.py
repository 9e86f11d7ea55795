"""Turn a CONNECT's hostname into the one address the relay will connect to.

The name is resolved once, here, and the address that passed the policy is the address
handed to ``open_connection``: there is no second lookup a hostile DNS server could
answer differently (DNS rebinding). Numeric spellings such as ``2130706433`` or
``0x7f.1`` are caught too, because the check runs on what the resolver returned.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Awaitable, Callable, List, Optional

from web.relay import frames
from web.relay.policy import Allowlist, IPAddress, refusal

Resolver = Callable[[str, int], Awaitable[List[str]]]


@dataclass(frozen=True)
class Decision:
    """Either an address and port to connect to, or a Wisp close reason and a log message.

    The port differs from the requested one only for an operator's allowlist redirect."""

    address: Optional[IPAddress]
    close_reason: int = 0
    why: str = ""
    port: int = 0


async def system_resolver(host: str, port: int) -> List[str]:
    """All TCP addresses the host's resolver gives for ``host``, in its order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _literal(host: str) -> Optional[IPAddress]:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


async def decide(host: str, port: int, allowlist: Allowlist,
                 resolver: Resolver = system_resolver,
                 timeout: float = 5.0) -> Decision:
    """Resolve ``host`` once and pick the first address the policy admits (or the
    operator's redirect for it)."""
    literal = _literal(host)
    if literal is not None:
        candidates: List[IPAddress] = [literal]
    else:
        try:
            names = await asyncio.wait_for(resolver(host, port), timeout)
        except (OSError, UnicodeError, asyncio.TimeoutError) as exc:
            return Decision(None, frames.REASON_UNREACHABLE, f"does not resolve: {exc}")
        candidates = [ipaddress.ip_address(name.split("%")[0]) for name in names]
    if not candidates:
        return Decision(None, frames.REASON_UNREACHABLE, "resolves to no address")
    reasons = []
    for ip in candidates:
        why = refusal(ip, port, allowlist)
        if why is None:
            address, actual_port = allowlist.destination(ip, port)
            return Decision(address, port=actual_port)
        reasons.append(f"{ip}: {why}")
    return Decision(None, frames.REASON_BLOCKED, "; ".join(reasons))
