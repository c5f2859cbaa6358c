"""The route table: the immutable, in-memory form of a deployment plan that requests read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.domain.capture import NO_CAPTURE, CaptureConfig
from modelyard.serving.batching import MicroBatcher
from modelyard.serving.loader import ServedModel
from modelyard.serving.routing import Selection, WeightedChoice


@dataclass(eq=False, slots=True)
class VariantRoute:
    """One variant as served: its model, batcher, weight, capture (with its endpoint's salt for
    hashing redacted fields) and the response headers naming it."""

    name: str
    served: ServedModel
    batcher: MicroBatcher
    weight: float
    capture: CaptureConfig = NO_CAPTURE
    capture_salt: str = ""
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def __post_init__(self) -> None:
        name = self.name.encode()
        self.headers = (
            (b"x-modelyard-variant", name),
            (b"x-amzn-invoked-production-variant", name),
            (b"x-modelyard-model-version", self.served.spec.ref.encode()),
        )


@dataclass(eq=False, slots=True)
class EndpointRoute:
    """One endpoint at one config: its variants by name, their weighted split and the traffic
    policy that chooses between them (one per endpoint, so endpoints can route differently)."""

    name: str
    config_number: int
    variants: dict[str, VariantRoute]
    policy: Any  # a TrafficPolicy[VariantRoute]
    choice: WeightedChoice[VariantRoute] = field(init=False)

    def __post_init__(self) -> None:
        routes = list(self.variants.values())
        self.choice = WeightedChoice(routes, [r.weight for r in routes])

    def select(self, key: str | None) -> Selection:
        """The variant that answers a request with routing key ``key`` (None: no key)."""
        return Selection(self.policy.choose(self.choice, key))


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every served endpoint at one plan revision. Replaced whole, never mutated."""

    revision: int
    endpoints: dict[str, EndpointRoute]

    def served_models(self) -> set[ServedModel]:
        return {v.served for e in self.endpoints.values() for v in e.variants.values()}


EMPTY = RouteTable(revision=-1, endpoints={})
