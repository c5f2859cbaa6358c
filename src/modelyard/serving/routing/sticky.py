"""Sticky routing: the same routing key reaches the same variant while weights are unchanged.

The key is hashed to a number in [0, 1) with a keyed-free, process-independent hash (not
Python's randomised ``hash``), so every worker and every server agrees. Changing weights moves
only the keys whose number falls in the shifted share, as with any cumulative split.
"""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

from modelyard.serving.routing.base import WeightedChoice

T = TypeVar("T")
_SCALE = float(1 << 64)


def key_position(key: str) -> float:
    """A stable, uniform number in [0, 1) for ``key``."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class StickyByKey:
    """Routes by the request key; requests without a key go to ``fallback``."""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback

    def choose(self, choice: WeightedChoice[T], key: str | None) -> T:
        if key is None:
            chosen: T = self._fallback.choose(choice, key)
            return chosen
        return choice.pick(key_position(key))
