"""The route table: the immutable, in-memory form of a deployment plan that requests read."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.domain.capture import NO_CAPTURE, CaptureConfig
from modelyard.domain.signature import columns_for
from modelyard.serving.batching import MicroBatcher
from modelyard.serving.loader import ServedModel
from modelyard.serving.routing import Selection, ShadowSampling, WeightedChoice

log = logging.getLogger("modelyard.serving")


@dataclass(frozen=True, slots=True)
class ShadowColumns:
    """The columns a shadow takes of a production variant's decoded rows, in the shadow's
    order: ``positions`` in those rows (``width`` columns wide), and the shadow's ``names``
    (a table of text features is picked by them)."""

    positions: np.ndarray
    names: tuple[str, ...]
    width: int


@dataclass(eq=False, slots=True)
class VariantRoute:
    """One variant as served: its model, batcher, weight, capture (with its endpoint's salt for
    hashing redacted fields) and the response headers naming it.

    ``shadow`` is the sampling percentage of a shadow variant (None: a production variant).
    ``alone`` is the selection of this variant on its own, with no shadow: how a shadow's copy
    of a request is predicted, built once rather than per copy. ``shadow_columns`` (a
    production variant's, set by its endpoint's route) maps each shadow of the endpoint that
    does not take this variant's decoded rows as they are to the columns it takes
    (:class:`ShadowColumns`), or to None when it cannot take them at all (its copies of this
    variant's requests are dropped and counted); empty in the usual case.
    """

    name: str
    served: ServedModel
    batcher: MicroBatcher
    weight: float
    capture: CaptureConfig = NO_CAPTURE
    capture_salt: str = ""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    shadow: float | None = None
    alone: Selection = field(init=False)
    shadow_columns: dict[VariantRoute, ShadowColumns | None] = field(
        init=False, default_factory=dict
    )
    #: Requests in flight on this endpoint's variant (its model's ``served.inflight`` counts
    #: every endpoint serving that model version: what keeps it loaded, not what one endpoint
    #: has in flight). Shown by ``/endpoints`` and ``modelyard_inflight_requests``.
    inflight: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        name = self.name.encode()
        self.headers = (
            (b"x-modelyard-variant", name),
            (b"x-amzn-invoked-production-variant", name),
            (b"x-modelyard-model-version", self.served.spec.ref.encode()),
        )
        self.alone = Selection(self)


@dataclass(eq=False, slots=True)
class EndpointRoute:
    """One endpoint at one config: its variants by name, the weighted split of its production
    variants, the traffic policy that chooses between them (one per endpoint, so endpoints can
    route differently), and the sampling of its shadow variants.

    Every variant, shadows included, is in ``variants`` (a caller may address a shadow by
    name); only production variants are in the weighted ``choice``.

    Args:
        draw: The source of numbers in [0, 1) the shadows sampled at neither 0 nor 100 % draw
            from (seed it in tests).
    """

    name: str
    config_number: int
    variants: dict[str, VariantRoute]
    policy: Any  # a TrafficPolicy[VariantRoute]
    draw: Callable[[], float] = random.random
    choice: WeightedChoice[VariantRoute] = field(init=False)
    shadows: ShadowSampling[VariantRoute] = field(init=False)
    # The selection of each production variant when no draw is due: chosen once, not per call.
    _fixed: dict[VariantRoute, Selection] = field(init=False)

    def __post_init__(self) -> None:
        routes = [r for r in self.variants.values() if r.shadow is None]
        self.choice = WeightedChoice(routes, [r.weight for r in routes])
        shadows = [(r, r.shadow) for r in self.variants.values() if r.shadow is not None]
        self.shadows = ShadowSampling(shadows, self.draw)
        for route in routes:
            route.shadow_columns = self._columns(route, [s for s, _ in shadows])
        self._fixed = {r: Selection(r, self.shadows.always) for r in routes}

    def _columns(
        self, route: VariantRoute, shadows: list[VariantRoute]
    ) -> dict[VariantRoute, ShadowColumns | None]:
        """What each shadow takes of ``route``'s decoded rows, where not all of them as they
        are. A shadow that cannot take them (a config stored before the control plane checked
        this) has its copies of ``route``'s requests dropped, with a warning: sent, they would
        put one input's values under another's name."""
        found: dict[VariantRoute, ShadowColumns | None] = {}
        given = route.served.spec.signature
        for shadow in shadows:
            wanted = shadow.served.spec.signature
            try:
                columns = columns_for(wanted, given)
            except ValueError as exc:
                log.warning(
                    "shadow variant %r of endpoint %r cannot take the rows of variant %r (%s): "
                    "its copies of that variant's requests are dropped and counted",
                    shadow.name, self.name, route.name, exc,
                )  # fmt: skip
                found[shadow] = None
                continue
            if columns is not None and wanted is not None and given is not None:
                names = tuple(wanted.feature_names or ())
                positions = np.asarray(columns, dtype=np.intp)
                found[shadow] = ShadowColumns(positions, names, given.n_features)
        return found

    def production_versions(self) -> list[int]:
        """The model version numbers the production variants serve, ascending: those a
        caller may name by number (a shadow's answers no caller, so its number is not one)."""
        return sorted({v.served.spec.version for v in self.variants.values() if v.shadow is None})

    def select(self, key: str | None) -> Selection:
        """The variant that answers a request with routing key ``key`` (None: no key), and the
        shadows that get a copy of it."""
        variant = self.policy.choose(self.choice, key)
        if self.shadows.drawn:
            return Selection(variant, self.shadows.pick())
        return self._fixed[variant]


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every served endpoint at one plan revision. Replaced whole, never mutated."""

    revision: int
    endpoints: dict[str, EndpointRoute]

    def served_models(self) -> set[ServedModel]:
        return {v.served for e in self.endpoints.values() for v in e.variants.values()}


EMPTY = RouteTable(revision=-1, endpoints={})
