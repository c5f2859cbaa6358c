"""Records of the model registry: models, their immutable versions, and where they came from."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelyard.domain.signature import Signature


class VersionStatus(enum.StrEnum):
    """Lifecycle of a model version. Versions are immutable; only the status moves."""

    READY = "ready"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a version came from: ``upload`` (a file path) now, ``training_job`` later."""

    kind: str
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class Trust:
    """Explicit trust the registering user granted, recorded on the version forever.

    ``pickle``: the artifact is a pickle/joblib file; loading it can run arbitrary code.
    ``user_code``: the artifact carries Python code (a pyfunc model) that runs on load.
    ``types``: extra types the user allowed in a skops file.
    """

    pickle: bool = False
    user_code: bool = False
    types: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"pickle": self.pickle, "user_code": self.user_code, "types": list(self.types)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Trust:
        data = data or {}
        return cls(
            pickle=bool(data.get("pickle", False)),
            user_code=bool(data.get("user_code", False)),
            types=tuple(data.get("types", ())),
        )


@dataclass(frozen=True, slots=True)
class StagedModel:
    """A validated model package already in the artifact store, not yet a version.

    A tuning trial stages its model; only the best trial's is recorded as a version
    (``RegistryService.register_staged``). JSON-able through :meth:`to_dict`.
    """

    digest: str
    size_bytes: int
    flavor: str
    model_format: str
    trust: Trust
    signature: Signature | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: The labels a classifier that predicts labels itself can answer (its estimator's
    #: classes), as class keys; None when the model does not say.
    labels: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels) if self.labels is not None else None,
            "digest": self.digest,
            "size_bytes": self.size_bytes,
            "flavor": self.flavor,
            "model_format": self.model_format,
            "trust": self.trust.to_dict(),
            "signature": self.signature.to_dict() if self.signature else None,
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StagedModel:
        return cls(
            digest=data["digest"],
            size_bytes=int(data["size_bytes"]),
            flavor=data["flavor"],
            model_format=data["model_format"],
            trust=Trust.from_dict(data.get("trust")),
            signature=Signature.from_dict(data["signature"]) if data.get("signature") else None,
            options=dict(data.get("options") or {}),
            labels=tuple(data["labels"]) if data.get("labels") is not None else None,
        )


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """One file of a stored model package, addressed by its sha256."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Model:
    """A registered model: a name that owns numbered versions and aliases."""

    name: str
    description: str | None
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable, numbered version of a model.

    ``artifact_digest`` is the sha256 of the package manifest in the artifact store; the
    manifest lists every file with its own digest, so the whole package is verifiable.
    """

    name: str
    version: int
    flavor: str
    model_format: str
    status: VersionStatus
    artifact_digest: str
    size_bytes: int
    signature: Signature | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    aliases: tuple[str, ...]
    description: str | None
    source: Source
    trust: Trust
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class AliasMove:
    """What pointing an alias did: the version it points at now, and the number of the one
    it pointed at when the write moved it (None: the alias was new), as the write itself
    found it (another writer may have moved it since anyone last read it)."""

    target: ModelVersion
    replaced: int | None
