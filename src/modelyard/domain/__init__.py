"""Frozen records and value objects shared by every layer (stdlib only)."""

from modelyard.domain.capture import CaptureConfig, RedactedField, Redaction
from modelyard.domain.endpoints import (
    Batching,
    ConfigChange,
    Endpoint,
    EndpointConfig,
    Predictor,
    Variant,
)
from modelyard.domain.jobs import Job, JobKind, JobStatus, hyperparameter_texts
from modelyard.domain.plan import (
    DeploymentPlan,
    EndpointPlan,
    ModelSpec,
    PlanSource,
    VariantPlan,
)
from modelyard.domain.references import ModelRef, validate_aliases, validate_name
from modelyard.domain.registry import (
    ArtifactFile,
    Model,
    ModelVersion,
    Source,
    StagedModel,
    Trust,
    VersionStatus,
)
from modelyard.domain.servers import (
    EndpointServer,
    ServerRecord,
    ServerStatus,
    ServerStatusSink,
    ServerView,
)
from modelyard.domain.signature import ColumnSpec, Signature

__all__ = [
    "ArtifactFile",
    "Batching",
    "CaptureConfig",
    "ColumnSpec",
    "ConfigChange",
    "DeploymentPlan",
    "Endpoint",
    "EndpointConfig",
    "EndpointPlan",
    "EndpointServer",
    "Job",
    "JobKind",
    "JobStatus",
    "Model",
    "ModelRef",
    "ModelSpec",
    "ModelVersion",
    "PlanSource",
    "Predictor",
    "RedactedField",
    "Redaction",
    "ServerRecord",
    "ServerStatus",
    "ServerStatusSink",
    "ServerView",
    "Signature",
    "Source",
    "StagedModel",
    "Trust",
    "Variant",
    "VariantPlan",
    "VersionStatus",
    "hyperparameter_texts",
    "validate_aliases",
    "validate_name",
]
