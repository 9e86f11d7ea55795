"""One drawing interface over three sources of choices.

The case generator is written once against ``Draw``: campaigns use ``StreamDraw`` (one
SHAKE-128 stream per case, named by its campaign, batch and index), vector generation and
tests use ``RandomDraw`` (a seeded ``random.Random``: the committed corpora are
regenerated from its stream, ``vectors/corpus.md``), and the CI tests use
``HypothesisDraw`` (the same choices taken from Hypothesis, so failures shrink and replay
from its example database).
"""

from __future__ import annotations

import random
import sys
from array import array
from hashlib import shake_128
from itertools import chain, count
from math import floor
from typing import Any, Iterator, Protocol, Sequence, TypeVar

T = TypeVar("T")


class Draw(Protocol):
    """The choices a generator may make; each source decides how to make them."""

    def integer(self, lo: int, hi: int) -> int:
        """A whole number in ``[lo, hi]``; sources shrink toward ``lo``."""

    def choice(self, options: Sequence[T]) -> T:
        """One of ``options``; sources shrink toward the first."""

    def chance(self, percent: int) -> bool:
        """True ``percent`` times in a hundred; shrinks toward False."""


class RandomDraw:
    """Choices from a seeded ``random.Random``: one stream for many cases (vector
    generation draws a form's cases from one seed; reseeding it for each case cost a
    campaign ~33k machine instructions a case, see ``StreamDraw``)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._random = self.rng.random  # ~10x cheaper than randint, which dominated

    # The scaled draw is never negative (``lo <= hi``), so ``floor`` gives what ``int``
    # gave, the same stream; it is a plain function call where ``int`` goes through the
    # type's constructor: ~30 ns less a draw, ~45 draws a case (issue 18).

    def integer(self, lo: int, hi: int) -> int:
        # 53 random bits scaled: uniform enough for ranges up to 2**32 (bias < 2**-21)
        return lo + floor(self._random() * (hi - lo + 1))

    def choice(self, options: Sequence[T]) -> T:
        return options[floor(self._random() * len(options))]

    def chance(self, percent: int) -> bool:
        return self._random() * 100.0 < percent


_FIRST = 504  # bytes read at once: 63 words, all of 92 % of FORMS cases (78 % of the campaign mix)
_MORE = 168  # bytes of each later part: 21 words, one SHAKE-128 block
_CHANCE = tuple(-(-(percent << 64) // 100) for percent in range(101))
"""``word < _CHANCE[p]`` for ``p/100`` of the 64-bit words (within 2**-64)."""
assert array("Q").itemsize == 8


def _words(data: bytes) -> array:
    """``data`` as 64-bit little-endian words, on any machine."""
    words = array("Q", data)
    if sys.byteorder == "big":
        words.byteswap()
    return words


def _more(key: bytes) -> Iterator[int]:
    """The words after the first part: SHAKE-128 of ``key/1``, ``key/2``... (a case
    rarely needs one)."""
    for part in count(1):
        yield from _words(shake_128(b"%s/%d" % (key, part)).digest(_MORE))


class StreamDraw:
    """Choices read from one stream per case: 64-bit words, the first 504 bytes of
    SHAKE-128(``key``) then (rarely) more parts (``_more``). This is what campaigns use:
    a case's stream is one hash of its name (~21k machine instructions, callgrind), where
    seeding MT19937 for each case cost ~33k and the sha256 naming its seed ~12k of a FORMS
    case's ~257k (issue 18). The same key draws the same choices on any machine and in
    any process.

    Each choice takes one word ``w``: ``w % n`` for one of ``n`` outcomes gives each a
    probability within ``2**-64`` of ``1/n`` (32 spare bits for the widest range drawn,
    2**32: no modulo bias a campaign could see), and ``w < _CHANCE[p]`` a chance of ``p``
    percent. ``seed`` is the first word: a 64-bit name of the case for records."""

    def __init__(self, key: bytes = b"") -> None:
        self.start(key)

    def start(self, key: bytes) -> StreamDraw:
        """Draw from the stream of ``key`` from its beginning."""
        first = _words(shake_128(key).digest(_FIRST))
        self.seed = first[0]
        self._next = chain(first, _more(key)).__next__
        return self

    def integer(self, lo: int, hi: int) -> int:
        return lo + self._next() % (hi - lo + 1)

    def choice(self, options: Sequence[T]) -> T:
        return options[self._next() % len(options)]

    def chance(self, percent: int) -> bool:
        return self._next() < _CHANCE[percent]


class HypothesisDraw:
    """Choices from a Hypothesis ``data`` object (``st.data()``), so examples shrink."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._data = data
        self._st = st

    def integer(self, lo: int, hi: int) -> int:
        return self._data.draw(self._st.integers(lo, hi))

    def choice(self, options: Sequence[T]) -> T:
        return options[self._data.draw(self._st.integers(0, len(options) - 1))]

    def chance(self, percent: int) -> bool:
        return self._data.draw(self._st.integers(0, 99)) >= 100 - percent
