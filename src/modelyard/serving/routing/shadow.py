"""Shadow sampling: which of an endpoint's shadow variants get a copy of one request.

A shadow variant never answers; it gets a copy of its sampling percentage of the requests the
production variants answer. At 100 % every request is copied and at 0 % none, without a draw;
in between, each such shadow draws one number in [0, 1) per request from an injected source
(seed it in tests), independently of the other shadows.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class ShadowSampling(Generic[T]):
    """Shadows with their sampling percentages; :meth:`pick` says which get one request's copy.

    Args:
        shadows: ``(shadow, percent)`` pairs, percent from 0 to 100.
        draw: A source of numbers in [0, 1), called once per request for each shadow sampled
            at more than 0 and less than 100 %.

    Attributes:
        always: The shadows sampled at 100 %, in the order given.
        drawn: Whether :meth:`pick` draws (some shadow is sampled at neither 0 nor 100 %).
    """

    __slots__ = ("_draw", "_sampled", "always", "drawn")

    def __init__(
        self, shadows: Sequence[tuple[T, float]], draw: Callable[[], float] = random.random
    ) -> None:
        self.always: tuple[T, ...] = tuple(s for s, percent in shadows if percent >= 100.0)
        self._sampled = tuple(
            (s, percent / 100.0) for s, percent in shadows if 0.0 < percent < 100.0
        )
        self._draw = draw
        self.drawn = bool(self._sampled)

    def pick(self) -> tuple[T, ...]:
        """The shadows that get a copy of this request: every 100 % one, then each sampled one
        whose draw falls under its share (``always`` itself when no draw is due)."""
        if not self._sampled:
            return self.always
        draw = self._draw
        picked = [s for s, share in self._sampled if draw() < share]
        return (*self.always, *picked) if picked else self.always
