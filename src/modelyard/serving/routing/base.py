"""The traffic-policy interface and the weighted choice every policy builds on."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from modelyard.serving.table import VariantRoute

T = TypeVar("T")


class WeightedChoice(Generic[T]):
    """Items with weights; ``pick(u)`` maps a number in [0, 1) to an item by cumulative share.

    Items with weight 0 are never picked.
    """

    __slots__ = ("_bounds", "_items")

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        total = float(sum(weights))
        if total <= 0:
            raise ValueError("at least one weight must be above 0")
        pairs = [(item, w / total) for item, w in zip(items, weights, strict=True) if w > 0]
        self._items = tuple(item for item, _ in pairs)
        bounds = list(accumulate(share for _, share in pairs))
        bounds[-1] = 1.0  # absorb rounding so u close to 1 still lands on the last item
        self._bounds = tuple(bounds)

    def pick(self, u: float) -> T:
        """The item whose cumulative-share interval holds ``u`` (0 <= u < 1)."""
        return self._items[min(bisect_right(self._bounds, u), len(self._items) - 1)]


@dataclass(frozen=True, slots=True)
class Selection:
    """A routing decision: the variant that answers, and the shadow variants that get a copy.

    ``shadows`` is empty unless the endpoint has shadow variants sampled for this request
    (:class:`~modelyard.serving.routing.shadow.ShadowSampling`); their answers are recorded,
    never returned. Selections hold no per-request state: one may be shared by many requests.
    """

    variant: VariantRoute
    shadows: tuple[VariantRoute, ...] = ()


class TrafficPolicy(Protocol[T]):
    """Chooses the variant for one request.

    ``key`` is the request's routing key (``X-Modelyard-Routing-Key``) or None.
    """

    def choose(self, choice: WeightedChoice[T], key: str | None) -> T:
        """Return the item to route to."""
        ...
