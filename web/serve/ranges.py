"""The ``Range`` header for one byte range (RFC 9110 s14.1.2, s14.2, s15.5.17).

A CDN answers a single satisfiable range with 206, an unsatisfiable one with 416 and
``Content-Range: bytes */SIZE``, and is allowed to ignore what it does not support
(several ranges, other units, bad syntax) by sending the whole file with 200. v86's
asynchronous disk only ever asks for one range at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Union

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE | re.ASCII)
_PAST_ANY_FILE = 10**18
"""What a position of more than 18 significant digits is taken as: past the end of any
file (Python will not even convert over 4,300 digits; the RFC sets no limit)."""


def _position(digits: str) -> int:
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 18 else _PAST_ANY_FILE


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int
    """Inclusive, as in ``Content-Range: bytes START-END/SIZE``."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable:
    """The request names only bytes past the end: answer 416."""

    @staticmethod
    def content_range(size: int) -> str:
        return f"bytes */{size}"


UNSATISFIABLE = Unsatisfiable()
Decision = Union[None, ByteRange, Unsatisfiable]


def parse_range(header: Optional[str], size: int) -> Decision:
    """None: serve the whole file (no header, or one we choose to ignore)."""
    if not header:
        return None
    match = _SINGLE.match(header)
    if match is None:  # several ranges, another unit, or not a range at all
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        suffix = _position(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size - 1)
    start = _position(first)
    end = size - 1 if not last else min(_position(last), size - 1)
    if last and _position(last) < start:
        return None  # invalid (last < first): ignored, per RFC 9110 s14.1.1
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, end)
