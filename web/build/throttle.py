"""Network conditions for ``x86lab web measure --network``: issue 15 asks for each page
load twice, unthrottled and at 20 Mbit/s with 40 ms RTT, because a visitor's link, not
loopback, decides how long the 3 MB download takes. Chromium's DevTools network
emulation (the same throttle as DevTools' network panel) applies it to the page and to
its Web Worker's fetches alike, so v86's files in the worker are slowed too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

UNTHROTTLED = "none"
"""The condition name of a load with no emulation (loopback at full speed)."""

SPEC = re.compile(r"(?P<rate>\d+(?:\.\d+)?)(?P<unit>kbit|mbit)-(?P<rtt>\d+(?:\.\d+)?)ms")
UNIT_BITS = {"kbit": 1_000, "mbit": 1_000_000}


@dataclass(frozen=True)
class NetworkCondition:
    """One emulated link: ``name`` as the user wrote it (``20mbit-40ms``), the throughput
    in bytes/s each way (DevTools takes bytes, people speak bits) and the RTT in ms
    (DevTools' ``latency``: added between a request and its response headers)."""

    name: str
    bytes_per_second: float
    rtt_ms: float


def parse_conditions(text: str) -> List[Optional[NetworkCondition]]:
    """``none,20mbit-40ms`` -> [None, NetworkCondition(...)]: the conditions to measure
    under, in order; ``None`` is unthrottled. Raises ValueError with the accepted form."""
    conditions: List[Optional[NetworkCondition]] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if part == UNTHROTTLED:
            conditions.append(None)
            continue
        match = SPEC.fullmatch(part)
        if not match or float(match["rate"]) <= 0:
            raise ValueError(f"network condition {part!r}: expected {UNTHROTTLED} or "
                             "RATE(kbit|mbit)-RTTms, e.g. 20mbit-40ms")
        rate = float(match["rate"]) * UNIT_BITS[match["unit"]] / 8
        conditions.append(NetworkCondition(part, rate, float(match["rtt"])))
    if len(set(conditions)) != len(conditions):
        raise ValueError(f"network condition named twice in {text!r}")
    return conditions


def condition_name(condition: Optional[NetworkCondition]) -> str:
    """The label each figure carries, so a row says which link it ran on."""
    return UNTHROTTLED if condition is None else condition.name


def emulate(page: object, condition: Optional[NetworkCondition]) -> None:
    """Throttle ``page`` (a Playwright page, before its navigation) to ``condition``
    through a CDP session; unthrottled pages get no session at all, so the default
    measurement stays exactly what it was before emulation existed."""
    if condition is None:
        return
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": condition.rtt_ms,
        "downloadThroughput": condition.bytes_per_second,
        "uploadThroughput": condition.bytes_per_second})
