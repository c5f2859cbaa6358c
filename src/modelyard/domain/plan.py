"""The deployment plan: what the data plane serves, as one immutable value.

The control plane writes configs; a :class:`PlanSource` turns the store's current state into a
plan. Serving processes poll ``revision()`` (one cheap query) and rebuild only when it moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from modelyard.domain.capture import NO_CAPTURE, CaptureConfig
from modelyard.domain.endpoints import Batching, Predictor
from modelyard.domain.registry import ModelVersion, Trust
from modelyard.domain.signature import Signature


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything needed to fetch and load one model version, without the database."""

    name: str
    version: int
    flavor: str
    model_format: str
    artifact_digest: str
    trust: Trust
    options: dict[str, Any] = field(default_factory=dict)
    signature: Signature | None = None
    predictor: Predictor = Predictor.AUTO  # the serving variant's choice

    @classmethod
    def from_version(cls, version: ModelVersion) -> ModelSpec:
        """The serving spec of a registered version."""
        return cls(
            name=version.name,
            version=version.version,
            flavor=version.flavor,
            model_format=version.model_format,
            artifact_digest=version.artifact_digest,
            trust=version.trust,
            options=dict(version.extra.get("options", {})),
            signature=version.signature,
        )

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def key(self) -> str:
        """Identifies the loaded model: same digest, ref and predictor, same model in memory."""
        return f"{self.ref}#{self.artifact_digest}/{self.predictor.value}"


@dataclass(frozen=True, slots=True)
class VariantPlan:
    """A variant as served: its model, weight, batching and capture; ``shadow`` the sampling
    percentage of a shadow variant (None: a production variant; see ``Variant``)."""

    name: str
    model: ModelSpec
    weight: float
    batching: Batching
    capture: CaptureConfig = NO_CAPTURE
    shadow: float | None = None


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    """One endpoint as served: the config number and its variants.

    ``capture_salt`` is the endpoint's secret for hashing redacted captured fields: the same
    for all its configs, so a value hashes alike before and after a change.
    """

    name: str
    config_number: int
    variants: tuple[VariantPlan, ...]
    capture_salt: str = ""

    def variant(self, name: str) -> VariantPlan | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True, slots=True)
class DeploymentPlan:
    """Every endpoint a server serves, at one store revision."""

    revision: int
    endpoints: dict[str, EndpointPlan]

    def models(self) -> dict[str, ModelSpec]:
        """Every model the plan serves, by :attr:`ModelSpec.key`."""
        return {v.model.key: v.model for e in self.endpoints.values() for v in e.variants}


class PlanSource(Protocol):
    """The data plane's only view of the control plane's state."""

    def revision(self) -> int:
        """A number that grows whenever any endpoint changes; cheap to call every second."""
        ...

    def load_plan(self) -> DeploymentPlan:
        """The full current plan, at the revision current when it was read."""
        ...
