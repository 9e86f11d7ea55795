"""An ``lz4 -l`` stand-in for the tiny kernel's build: the legacy LZ4 frame with every
block stored (one literal run, no matches).

Why: x86 has no uncompressed bzImage, and the web demo sends the bzImage brotli-compressed
anyway. LZ4 output is nearly incompressible, so brotli over an LZ4 bzImage saved only 11 %
(1.85 MB -> 1.64 MB on the wire), while brotli over the plain kernel gets it to about
1.40 MB (as small as xz) and the browser undoes brotli natively. A stored block keeps the
kernel's own LZ4 decompressor (``lib/decompress_unlz4.c``) and turns its work into one
``memmove`` of the image instead of ~4 guest instructions per output byte.

The kernel's Makefile runs ``$(LZ4) -l -9 - -`` (stdin to stdout; the image's size is
appended by ``size_append`` after it), so ``make LZ4="python3 lz4_stored.py"`` uses this.

Format (lz4 ``doc/lz4_Frame_format.md``, "Legacy frame"; ``doc/lz4_Block_format.md``):
the magic number 0x184C2102 (little-endian), then blocks, each a 4-byte little-endian
compressed size and an LZ4 block that decodes to 8 MiB (the last one to the rest). A block
here is one sequence: a token whose high nibble is 15 (literal length follows), the
length's remainder after 15 as bytes of 255 and a final byte below 255, then the literals.
The kernel's pre-boot path (``LZ4_decompress_fast`` with the exact output length) accepts
it: a literal run that ends exactly at the output's end is the block's last sequence.
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO, Iterator

LEGACY_MAGIC = 0x184C2102
BLOCK_SIZE = 8 << 20
"""Uncompressed bytes per legacy block: the kernel's LZ4_DEFAULT_UNCOMPRESSED_CHUNK_SIZE."""
RUN_MASK = 15


def literal_length_bytes(length: int) -> bytes:
    """The token and length bytes that announce ``length`` literals and no match."""
    if length < RUN_MASK:
        return bytes([length << 4])
    rest = length - RUN_MASK
    return bytes([RUN_MASK << 4]) + b"\xff" * (rest // 255) + bytes([rest % 255])


def stored_block(data: bytes) -> bytes:
    """One LZ4 block holding ``data`` as literals, with its size prefix."""
    block = literal_length_bytes(len(data)) + data
    return struct.pack("<I", len(block)) + block


def stored_frame(data: bytes) -> Iterator[bytes]:
    """The legacy frame of ``data``, in pieces."""
    yield struct.pack("<I", LEGACY_MAGIC)
    for start in range(0, len(data), BLOCK_SIZE):
        yield stored_block(data[start:start + BLOCK_SIZE])


def main(argv: list, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Called as the kernel calls lz4: ``-l -9 - -`` (legacy format, stdin to stdout)."""
    if "-l" not in argv or argv[-2:] != ["-", "-"]:
        print(f"lz4_stored: expected '-l ... - -' as the kernel passes, got {argv}",
              file=sys.stderr)
        return 2
    for piece in stored_frame(stdin.read()):
        stdout.write(piece)
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin.buffer, sys.stdout.buffer))
