"""The stored-block LZ4 writer the tiny kernel's build uses instead of ``lz4 -l -9``.

Expected bytes come from the format documents (lz4 ``doc/lz4_Block_format.md``: a token's
high nibble 15 means more length bytes follow, 255 meaning "add 255 and read on"; the
legacy frame is the magic 0x184C2102 and size-prefixed blocks of 8 MiB), and the round
trip goes through the host's own ``lz4 -d``, an independent decoder.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess

import pytest

from images.kernel import lz4_stored


@pytest.mark.parametrize("length, expected", [
    (0, b"\x00"),
    (14, b"\xe0"),
    (15, b"\xf0\x00"),                     # exactly 15: one 0 byte follows
    (15 + 254, b"\xf0\xfe"),
    (15 + 255, b"\xf0\xff\x00"),           # 255 means "add and read on", so a 0 ends it
    (15 + 255 + 10, b"\xf0\xff\x0a"),      # the spec's example: 280 = 15 + 255 + 10
    (15 + 3 * 255 + 7, b"\xf0\xff\xff\xff\x07"),
], ids=["0", "14", "15", "269", "270", "280", "787"])
def test_literal_length_bytes(length: int, expected: bytes) -> None:
    assert lz4_stored.literal_length_bytes(length) == expected


def test_frame_layout() -> None:
    data = bytes(range(256)) * 3  # 768 bytes: one block, token + 753 = 2 * 255 + 243
    out = b"".join(lz4_stored.stored_frame(data))
    block = b"\xf0\xff\xff" + bytes([243]) + data
    assert out == struct.pack("<I", 0x184C2102) + struct.pack("<I", len(block)) + block


def test_blocks_are_8_mib() -> None:
    data = bytes(8 * 2**20 + 100)
    pieces = list(lz4_stored.stored_frame(data))
    assert len(pieces) == 3  # magic, a full 8 MiB block, the 100-byte rest
    first = pieces[1]
    # size prefix, token, (8 MiB - 15) // 255 bytes of 255, the remainder, the literals
    assert len(first) == 4 + 1 + (8 * 2**20 - 15) // 255 + 1 + 8 * 2**20
    assert pieces[2] == struct.pack("<I", 102) + b"\xf0" + bytes([85]) + bytes(100)


@pytest.mark.skipif(shutil.which("lz4") is None, reason="the lz4 tool is not installed")
@pytest.mark.parametrize("size", [0, 1, 15, 3_429_088, 8 * 2**20, 8 * 2**20 + 4097],
                         ids=["empty", "1", "15", "kernel-sized", "8MiB", "over-8MiB"])
def test_host_lz4_decodes_it(size: int) -> None:
    data = random.Random(size).randbytes(size)
    out = io.BytesIO()
    assert lz4_stored.main(["-l", "-9", "-", "-"], io.BytesIO(data), out) == 0
    decoded = subprocess.run(["lz4", "-d", "-c"], input=out.getvalue(),
                             capture_output=True, check=True).stdout
    assert decoded == data


def test_refuses_other_arguments() -> None:
    assert lz4_stored.main(["-9", "in", "out"], io.BytesIO(b""), io.BytesIO()) == 2
