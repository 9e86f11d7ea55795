"""``RandomDraw`` is the stream campaigns are reproduced from: a seed must draw the same
numbers whatever way the draws are computed for speed (issue 18)."""

from __future__ import annotations

import random

from differential.draw import RandomDraw

# Ranges the generator draws from: tiny, signed, page-sized, the full 32 bits.
_RANGES = ((0, 0), (0, 1), (0, 5), (0, 7), (1, 16), (-1, 1), (-0x80, 0x7F), (-0x100, 0x100),
           (64, 4032), (0, 0xFFFF), (0, 0xFFFFF), (0, 0xFFFFFFFF))


def test_integer_and_choice_draw_what_the_int_of_the_scaled_float_drew() -> None:
    """The first formulation, ``lo + int(random() * (hi - lo + 1))``, pins the stream."""
    options = tuple(range(7))
    for seed in range(20):
        draw, rng = RandomDraw(seed), random.Random(seed)
        for _ in range(300):
            for lo, hi in _RANGES:
                assert draw.integer(lo, hi) == lo + int(rng.random() * (hi - lo + 1))
            assert draw.choice(options) == options[int(rng.random() * len(options))]
            assert draw.chance(30) == (rng.random() * 100 < 30)


def test_reseed_starts_the_stream_a_new_draw_would() -> None:
    draw = RandomDraw(5)
    for seed in (0, 1, 2**32 + 7, 2**64 - 1):
        draw.integer(0, 100)
        fresh = RandomDraw(seed)
        draw.reseed(seed)
        assert [draw.integer(0, 2**32 - 1) for _ in range(50)] == \
            [fresh.integer(0, 2**32 - 1) for _ in range(50)]
