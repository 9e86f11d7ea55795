"""One drawing interface over two sources of choices.

The case generator is written once against ``Draw``: campaigns use ``RandomDraw`` (a seeded
``random.Random``, fast, reproducible from the seed) and the CI tests use
``HypothesisDraw`` (the same choices taken from Hypothesis, so failures shrink and replay
from its example database).
"""

from __future__ import annotations

import _random
import random
from math import floor
from typing import Any, Protocol, Sequence, TypeVar

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
    """Choices from a seeded ``random.Random``: what campaigns use, for speed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._random = self.rng.random  # ~10x cheaper than randint, which dominated

    def reseed(self, seed: int) -> RandomDraw:
        """Start over from ``seed``, as ``RandomDraw(seed)`` would (the same stream: for a
        non-negative int, ``random.Random.seed`` only passes it to the C generator),
        without a new generator and the Python-level ``seed``: ~2 µs of a campaign
        case's ~90 µs of drawing (issue 18)."""
        _random.Random.seed(self.rng, seed)
        return self

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
