"""Which destinations the relay may connect to: public unicast only, unless allowlisted.

The relay runs next to other services (a cloud metadata endpoint at 169.254.169.254, a
database on 10.x, the host's own loopback). A guest in a browser must reach none of them,
so every address that is not public unicast is refused, including the IPv6 spellings
that embed an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo), since the host
may route those to the embedded IPv4 address. Address classes follow the IANA IPv4 and
IPv6 Special-Purpose Address Registries; each row cites the RFC that defines it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Dict, FrozenSet, Iterable, Mapping, Optional, Tuple, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

_V4_BLOCKED = (
    ("255.255.255.255/32", "broadcast (RFC 919)"),
    ("0.0.0.0/8", "unspecified / this network (RFC 1122)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared CGNAT space (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link-local (RFC 3927)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
    ("192.88.99.0/24", "6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
)

_V6_BLOCKED = (
    ("::/128", "unspecified (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    ("::ffff:0:0/96", "IPv4-mapped (RFC 4291)"),
    ("::/96", "IPv4-compatible (RFC 4291)"),
    ("64:ff9b::/96", "NAT64 well-known prefix (RFC 6052)"),
    ("64:ff9b:1::/48", "NAT64 local-use prefix (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link-local (RFC 4291)"),
    ("fec0::/10", "site-local (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
)

_TEREDO = ipaddress.ip_network("2001::/32")
_IETF_V6 = ipaddress.ip_network("2001::/23")
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")

BLOCKED_PORTS = {0: "port 0 (invalid)", 25: "SMTP port 25 (spam relay)"}
"""Ports refused even on public addresses: 0 cannot be connected, 25 is how open
proxies get abused for spam. An allowlist entry still admits them."""


def _table(rows: Iterable[Tuple[str, str]]) -> Tuple[Tuple[object, str], ...]:
    return tuple((ipaddress.ip_network(net), why) for net, why in rows)


_V4_TABLE = _table(_V4_BLOCKED)
_V6_TABLE = _table(_V6_BLOCKED)


def _blocked_by(table: Tuple[Tuple[object, str], ...], ip: IPAddress) -> Optional[str]:
    for network, why in table:
        if ip in network:  # type: ignore[operator]
            return why
    return None


def _classify_v6(ip: ipaddress.IPv6Address) -> Optional[str]:
    if ip.scope_id:
        return f"scoped IPv6 address %{ip.scope_id} (RFC 4007)"
    ip = ipaddress.IPv6Address(int(ip))  # drop any scope before table lookups
    why = _blocked_by(_V6_TABLE, ip)
    if why:
        return why
    if ip.sixtofour is not None:
        inner = classify(ip.sixtofour)
        return f"6to4 (RFC 3056) embedding {ip.sixtofour}: {inner}" if inner else None
    if ip in _TEREDO and ip.teredo is not None:
        server, client = ip.teredo
        for role, inner_ip in (("server", server), ("client", client)):
            inner = classify(inner_ip)
            if inner:
                return f"Teredo (RFC 4380) {role} {inner_ip}: {inner}"
        return None
    if ip in _IETF_V6:
        return "IETF protocol assignments (RFC 2928)"
    if ip not in _GLOBAL_UNICAST_V6:
        return "reserved: outside global unicast 2000::/3 (RFC 4291)"
    return None


def classify(ip: IPAddress) -> Optional[str]:
    """Why ``ip`` is not a public unicast address, or None when it is one."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _blocked_by(_V4_TABLE, ip)
    return _classify_v6(ip)


Endpoint = Tuple[IPAddress, int]


@dataclass(frozen=True)
class Allowlist:
    """Exact IP:port pairs the operator admits even though the policy would refuse them,
    each optionally redirected to another exact IP:port.

    A guest cannot address the relay host's own 127.0.0.1 (its loopback is its own), so a
    test names a stand-in destination (``192.0.2.10:80``, documentation space nothing else
    uses) and the operator maps it: ``192.0.2.10:80=127.0.0.1:8080``. Both sides are exact
    addresses and ports, so this admits one more destination, never a range: still no open
    proxy.
    """

    entries: FrozenSet[Endpoint] = frozenset()
    redirects: Mapping[Endpoint, Endpoint] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Allowlist:
        """``IP:PORT`` or ``IP:PORT=IP:PORT`` (admit the left side, connect to the right)."""
        entries = set()
        redirects: Dict[Endpoint, Endpoint] = {}
        for spec in specs:
            source, sep, target = spec.partition("=")
            endpoint = parse_endpoint(source)
            if sep:
                if endpoint in redirects:
                    raise ValueError(f"{spec!r}: {source} is already redirected to "
                                     f"{format_endpoint(redirects[endpoint])}")
                redirects[endpoint] = parse_endpoint(target)
            entries.add(endpoint)
        return cls(frozenset(entries), MappingProxyType(redirects))

    def admits(self, ip: IPAddress, port: int) -> bool:
        return (_unscoped(ip), port) in self.entries

    def destination(self, ip: IPAddress, port: int) -> Endpoint:
        """Where the relay connects for an admitted ``ip:port``: itself or its redirect."""
        return self.redirects.get((_unscoped(ip), port), (ip, port))


def format_endpoint(endpoint: Endpoint) -> str:
    ip, port = endpoint
    return f"[{ip}]:{port}" if isinstance(ip, ipaddress.IPv6Address) else f"{ip}:{port}"


def _unscoped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(int(ip))
    return ip


def parse_endpoint(spec: str) -> Tuple[IPAddress, int]:
    """``IP:PORT`` or ``[IPv6]:PORT`` -> (address, port); a clear ValueError otherwise."""
    host, sep, port_text = spec.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{spec!r}: expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{spec!r}: {host!r} is not an IP address "
                         "(allowlist entries are addresses, never names)") from None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{spec!r}: port must be 1..65535")
    return ip, int(port_text)


def refusal(ip: IPAddress, port: int, allowlist: Allowlist) -> Optional[str]:
    """Why the relay must not connect to ``ip:port``, or None when it may."""
    if allowlist.admits(ip, port):
        return None
    why = classify(ip)
    if why:
        return why
    return BLOCKED_PORTS.get(port)
