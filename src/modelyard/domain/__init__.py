"""Frozen records and value objects shared by every layer (stdlib only)."""

from modelyard.domain.references import ModelRef, validate_name
from modelyard.domain.registry import (
    ArtifactFile,
    Model,
    ModelVersion,
    Source,
    Trust,
    VersionStatus,
)
from modelyard.domain.signature import ColumnSpec, Signature

__all__ = [
    "ArtifactFile",
    "ColumnSpec",
    "Model",
    "ModelRef",
    "ModelVersion",
    "Signature",
    "Source",
    "Trust",
    "VersionStatus",
    "validate_name",
]
