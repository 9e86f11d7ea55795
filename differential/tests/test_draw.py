"""``StreamDraw`` is the stream campaigns are reproduced from and ``RandomDraw`` the one
the vector corpora are: a key or seed must draw the same numbers whatever way the draws
are computed for speed (issue 18), and the numbers must be uniform."""

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


def _stream_words(key: bytes, count: int) -> list:
    """The words of ``key``'s stream as ``StreamDraw`` documents them, computed apart."""
    from hashlib import shake_128

    data = shake_128(key).digest(504)
    part = 1
    while len(data) < 8 * count:
        data += shake_128(key + b"/%d" % part).digest(168)
        part += 1
    return [int.from_bytes(data[i:i + 8], "little") for i in range(0, 8 * count, 8)]


def test_a_stream_draw_reads_the_documented_words() -> None:
    """Word i of SHAKE-128 (and its later parts), little-endian, whatever the machine."""
    from differential.draw import StreamDraw

    draw = StreamDraw(b"1:2:3")
    words = _stream_words(b"1:2:3", 200)  # 63 words, then 21-word parts
    assert draw.seed == words[0]
    spans = [hi - lo + 1 for lo, hi in _RANGES]
    for number, word in enumerate(words):
        if number % 3 == 0:
            lo, hi = _RANGES[number % len(_RANGES)]
            assert draw.integer(lo, hi) == lo + word % spans[number % len(_RANGES)]
        elif number % 3 == 1:
            assert draw.choice("abcdefg") == "abcdefg"[word % 7]
        else:
            assert draw.chance(30) == (word * 100 < 30 << 64)
    assert StreamDraw().start(b"1:2:3").integer(0, 2**32 - 1) == words[0] % 2**32


def _chi_square(counts: list) -> float:
    expected = sum(counts) / len(counts)
    return sum((n - expected) ** 2 / expected for n in counts)


def test_stream_draws_are_uniform() -> None:
    """Each outcome as often as the others (chi-square within 6 standard deviations of
    its mean, df + 6 sqrt(2 df)) and each chance as likely as its percent (within 6
    standard deviations), over fixed keys: deterministic, it cannot flake, and an
    off-by-one range, a skewed chance or a reused word fails it."""
    from differential.draw import StreamDraw

    draw = StreamDraw()
    tallies = {span: [0] * span for span in (2, 3, 6, 7, 22, 257)}
    hits = {percent: 0 for percent in (0, 5, 30, 50, 90, 100)}
    keys = 3000
    for key in range(keys):
        draw.start(b"test:%d" % key)
        for span, counts in tallies.items():
            for _ in range(6 if span < 100 else 30):
                counts[draw.integer(-3, span - 4) + 3] += 1
        for _ in range(20):
            for percent in hits:
                hits[percent] += draw.chance(percent)
    for span, counts in tallies.items():
        assert _chi_square(counts) < (span - 1) + 6 * (2 * (span - 1)) ** 0.5, span
    for percent, hit in hits.items():
        mean = 20 * keys * percent / 100
        assert abs(hit - mean) <= 6 * (mean * (1 - percent / 100)) ** 0.5, percent
    pairs = [0] * 36  # consecutive draws independent: (a, b) uniform over 6 x 6
    for key in range(2000):
        draw.start(b"pairs:%d" % key)
        for _ in range(9):
            pairs[draw.integer(0, 5) * 6 + draw.integer(0, 5)] += 1
    assert _chi_square(pairs) < 35 + 6 * 70 ** 0.5
