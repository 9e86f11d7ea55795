"""Packet layout against bytes written out by hand from the Wisp protocol text."""

from __future__ import annotations

import pytest

from web.relay import frames


def test_connect_layout_is_type_id_streamtype_port_host_little_endian():
    # 0x01 | stream 1 (LE u32) | TCP 0x01 | port 80 (LE u16: 50 00) | "a"
    expected = bytes([0x01, 1, 0, 0, 0, 0x01, 0x50, 0x00]) + b"a"
    assert frames.encode_connect(1, "a", 80) == expected
    target = frames.parse_connect(frames.parse(expected))
    assert (target.stream_type, target.port, target.hostname) == (1, 80, "a")


def test_continue_and_close_layouts():
    assert frames.encode_continue(0, 128) == bytes([0x03, 0, 0, 0, 0, 128, 0, 0, 0])
    assert frames.encode_close(0x01020304, 0x48) == bytes([0x04, 4, 3, 2, 1, 0x48])


@pytest.mark.parametrize("raw", [b"", b"\x01", b"\x02\x01\x00\x00"], ids=["empty", "1", "4"])
def test_truncated_header_is_a_frame_error(raw):
    with pytest.raises(frames.FrameError, match="truncated"):
        frames.parse(raw)


@pytest.mark.parametrize("payload, needle", [
    (b"\x01\x50", "truncated"),
    (b"\x01\x50\x00", "unusable"),
    (b"\x01\x50\x00\xff\xfe", "UTF-8"),
    (b"\x01\x50\x00" + b"a" * 254, "unusable"),
    (b"\x01\x50\x00a\x00b", "unusable"),
], ids=["short", "empty-host", "not-utf8", "too-long", "nul"])
def test_bad_connect_payload_names_its_stream(payload, needle):
    packet = frames.parse(b"\x01\x07\x00\x00\x00" + payload)
    with pytest.raises(frames.FrameError, match=needle) as info:
        frames.parse_connect(packet)
    assert info.value.stream_id == 7


def test_close_without_reason_still_closes():
    assert frames.parse_close(frames.parse(b"\x04\x01\x00\x00\x00")) == frames.REASON_UNSPECIFIED
