"""Endpoints and their immutable configs: which model versions serve a name, in what shares."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelyard.domain.capture import NO_CAPTURE, CaptureConfig
from modelyard.errors import InvalidInput, VariantNotFound

_DEFAULT_BATCH = 64
_DEFAULT_WAIT_MS = 2.0


@dataclass(frozen=True, slots=True)
class Batching:
    """Adaptive micro-batching of one variant.

    Requests that arrive while a batch is being predicted wait (at most ``max_wait_ms``) and are
    predicted together, up to ``max_batch_size`` rows. ``max_batch_size`` 1 turns it off.
    """

    max_batch_size: int = _DEFAULT_BATCH
    max_wait_ms: float = _DEFAULT_WAIT_MS

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_size <= 100_000:
            raise InvalidInput(f"max_batch_size must be 1..100000, got {self.max_batch_size}")
        if not 0 <= self.max_wait_ms <= 1_000:
            raise InvalidInput(f"max_wait_ms must be 0..1000, got {self.max_wait_ms}")

    def to_dict(self) -> dict[str, Any]:
        return {"max_batch_size": self.max_batch_size, "max_wait_ms": self.max_wait_ms}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Batching:
        data = data or {}
        return cls(
            max_batch_size=int(data.get("max_batch_size", _DEFAULT_BATCH)),
            max_wait_ms=float(data.get("max_wait_ms", _DEFAULT_WAIT_MS)),
        )


class Predictor(enum.StrEnum):
    """Which predictor serves a variant's model.

    ``auto`` serves the compiled tree ensemble when the model converts and verifies equal to
    the native library, else the native one; ``native`` never compiles; ``compiled`` is
    ``auto`` that the endpoints service refuses up front for a model that cannot compile.
    """

    AUTO = "auto"
    NATIVE = "native"
    COMPILED = "compiled"

    @classmethod
    def parse(cls, text: str) -> Predictor:
        """Raises InvalidInput naming the choices."""
        try:
            return cls(text)
        except ValueError:
            raise InvalidInput(
                f"unknown predictor {text!r}; choose one of {', '.join(p.value for p in cls)}"
            ) from None


@dataclass(frozen=True, slots=True)
class Variant:
    """One variant: a resolved model version and its share of the traffic.

    ``requested`` keeps what the user wrote (``churn@production``); ``model``/``version`` is what
    it resolved to when the config was made. Moving the alias later changes nothing here.
    ``capture`` says which share of its requests is recorded (off by default).

    ``shadow`` None: a production variant, answering its ``weight``'s share of the requests. A
    number (0-100): a shadow variant, which never answers (its ``weight`` is 0) and gets a copy
    of that percentage of the requests the production variants answer, off the response path.
    """

    name: str
    model: str
    version: int
    weight: float
    batching: Batching = Batching()
    requested: str | None = None
    predictor: Predictor = Predictor.AUTO
    capture: CaptureConfig = NO_CAPTURE
    shadow: float | None = None

    def __post_init__(self) -> None:
        if self.shadow is not None:
            if not 0.0 <= self.shadow <= 100.0:  # also refuses NaN
                raise InvalidInput(
                    f"the shadow sampling of variant {self.name!r} must be a percentage "
                    f"from 0 to 100, got {self.shadow:g}"
                )
            if self.weight != 0.0:
                raise InvalidInput(
                    f"variant {self.name!r} is a shadow: it answers no request, so it takes "
                    f"no weight (got {self.weight:g})"
                )

    @property
    def is_shadow(self) -> bool:
        return self.shadow is not None

    @property
    def model_ref(self) -> str:
        return f"{self.model}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "weight": self.weight,
            "batching": self.batching.to_dict(),
            "requested": self.requested,
            "predictor": self.predictor.value,
            "capture": self.capture.to_dict(),
            "shadow": self.shadow,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Variant:
        return cls(
            name=str(data["name"]),
            model=str(data["model"]),
            version=int(data["version"]),
            weight=float(data["weight"]),
            batching=Batching.from_dict(data.get("batching")),
            requested=data.get("requested"),
            predictor=Predictor.parse(str(data.get("predictor", Predictor.AUTO.value))),
            capture=CaptureConfig.from_dict(data.get("capture")),
            shadow=None if data.get("shadow") is None else float(data["shadow"]),
        )


class ConfigChange(enum.StrEnum):
    """Why a config was made."""

    CREATE = "create"
    UPDATE = "update"
    WEIGHTS = "weights"
    ROLLBACK = "rollback"
    #: A shadow variant made the sole production variant (``EndpointService.promote``).
    PROMOTE = "promote"
    #: Every variant's capture share changed, nothing else (``EndpointService.set_capture``).
    CAPTURE = "capture"


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """An immutable config: numbered 1, 2, 3… per endpoint; every change makes a new one."""

    endpoint: str
    number: int
    variants: tuple[Variant, ...]
    change: ConfigChange
    created_at: datetime

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A named endpoint and the config it currently serves."""

    name: str
    config: EndpointConfig
    created_at: datetime
    updated_at: datetime


def check_ever_had(endpoint: str, variant: str, configs: Iterable[EndpointConfig]) -> None:
    """Refuse ``variant`` when no config of ``endpoint`` (``configs``: its history) ever had
    it: a typo, not an empty window (a retired variant's data stays readable).

    Raises:
        VariantNotFound: naming the variants it had.
    """
    had = list(dict.fromkeys(v.name for config in configs for v in config.variants))
    if variant not in had:
        raise VariantNotFound(
            f"endpoint {endpoint!r} never had a variant {variant!r}; its variants: {', '.join(had)}"
        )
