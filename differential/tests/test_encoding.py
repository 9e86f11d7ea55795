"""``encoding.split_prefixes`` against the definition it replaced: a loop over the leading
bytes while each is a legacy prefix."""

from __future__ import annotations

import random

from differential.encoding import LEGACY_PREFIXES, split_prefixes


def _by_loop(code: bytes):
    i = 0
    while i < len(code) and code[i] in LEGACY_PREFIXES:
        i += 1
    return code[:i], code[i:]


def test_split_prefixes_is_the_loop_over_leading_prefix_bytes():
    draw = random.Random(18)
    alphabet = sorted(LEGACY_PREFIXES) + [0x0F, 0x90, 0xA4, 0xCD, 0x00, 0xFF]
    samples = [b"", b"\x66", b"\x90", bytes(sorted(LEGACY_PREFIXES)) * 2]
    samples += [bytes(draw.choice(alphabet) for _ in range(draw.randrange(16)))
                for _ in range(5000)]
    samples += [bytes(draw.randrange(256) for _ in range(15)) for _ in range(2000)]
    for code in samples:
        assert split_prefixes(code) == _by_loop(code), code.hex()
