"""Weighted random routing: each request independently, in proportion to the weights."""

from __future__ import annotations

import random
from typing import TypeVar

from modelyard.serving.routing.base import WeightedChoice

T = TypeVar("T")


class WeightedRandom:
    """Picks by weight with an injected random source (seed it in tests)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def choose(self, choice: WeightedChoice[T], key: str | None) -> T:
        return choice.pick(self._random())
