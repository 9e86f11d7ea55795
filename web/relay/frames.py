"""Wisp v1 packets: the byte layout, in one place for the server and our test client.

Every packet is ``type:u8, stream_id:u32 little-endian, payload``. Payloads:
CONNECT ``stream_type:u8, port:u16 LE, hostname (UTF-8, rest of packet)``;
DATA the bytes; CONTINUE ``buffer_remaining:u32 LE``; CLOSE ``reason:u8``.
Source: MercuryWorkshop/wisp-protocol, protocol.md ("Packet format", "Packet Types").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT = 0x01
DATA = 0x02
CONTINUE = 0x03
CLOSE = 0x04

STREAM_TCP = 0x01
STREAM_UDP = 0x02

# Close reasons (protocol.md, "Close Reasons").
REASON_UNSPECIFIED = 0x01
REASON_VOLUNTARY = 0x02
REASON_NETWORK_ERROR = 0x03
REASON_INVALID = 0x41
REASON_UNREACHABLE = 0x42
REASON_TIMEOUT = 0x43
REASON_REFUSED = 0x44
REASON_DATA_TIMEOUT = 0x47
REASON_BLOCKED = 0x48
REASON_THROTTLED = 0x49

HEADER = struct.Struct("<BI")
_CONNECT_HEAD = struct.Struct("<BH")
_U32 = struct.Struct("<I")

MAX_HOSTNAME = 253
"""Longest DNS name (RFC 1035 s2.3.4 less the root dot); longer is refused as invalid."""


class FrameError(ValueError):
    """A packet that cannot be parsed; ``stream_id`` is set when the header was readable."""

    def __init__(self, message: str, stream_id: int | None = None) -> None:
        super().__init__(message)
        self.stream_id = stream_id


@dataclass(frozen=True)
class Packet:
    kind: int
    stream_id: int
    payload: bytes


@dataclass(frozen=True)
class Connect:
    stream_type: int
    port: int
    hostname: str


def parse(frame: bytes) -> Packet:
    """Split a WebSocket binary message into header and payload."""
    if len(frame) < HEADER.size:
        raise FrameError(f"truncated packet: {len(frame)} bytes, header needs {HEADER.size}")
    kind, stream_id = HEADER.unpack_from(frame)
    return Packet(kind, stream_id, bytes(frame[HEADER.size:]))


def parse_connect(packet: Packet) -> Connect:
    """Decode a CONNECT payload; a bad one is the client's error on that stream only."""
    body = packet.payload
    if len(body) < _CONNECT_HEAD.size:
        raise FrameError(f"truncated CONNECT payload: {len(body)} bytes", packet.stream_id)
    stream_type, port = _CONNECT_HEAD.unpack_from(body)
    raw_host = body[_CONNECT_HEAD.size:]
    try:
        hostname = raw_host.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("CONNECT hostname is not UTF-8", packet.stream_id) from None
    if not hostname or len(hostname) > MAX_HOSTNAME or "\x00" in hostname:
        raise FrameError(f"CONNECT hostname unusable: {hostname[:64]!r}", packet.stream_id)
    return Connect(stream_type, port, hostname)


def parse_continue(packet: Packet) -> int:
    if len(packet.payload) < _U32.size:
        raise FrameError("truncated CONTINUE payload", packet.stream_id)
    return _U32.unpack_from(packet.payload)[0]


def parse_close(packet: Packet) -> int:
    """The close reason; a CLOSE without one still closes (reason 'unspecified')."""
    return packet.payload[0] if packet.payload else REASON_UNSPECIFIED


def encode(kind: int, stream_id: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, stream_id) + payload


def encode_connect(stream_id: int, hostname: str, port: int,
                   stream_type: int = STREAM_TCP) -> bytes:
    body = _CONNECT_HEAD.pack(stream_type, port) + hostname.encode("utf-8")
    return encode(CONNECT, stream_id, body)


def encode_continue(stream_id: int, remaining: int) -> bytes:
    return encode(CONTINUE, stream_id, _U32.pack(remaining))


def encode_close(stream_id: int, reason: int) -> bytes:
    return encode(CLOSE, stream_id, bytes([reason]))
