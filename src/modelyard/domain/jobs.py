"""Jobs: training (and later tuning, batch, monitoring) work that runs out of the request path,
in its own process, with its state in the metadata store."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from modelyard.redaction import mask_urls_in, redact, urls_in


def hyperparameter_texts(given: Mapping[str, Any]) -> dict[str, str]:
    """Hyperparameters as a job records them: SageMaker's request strings.

    A string is kept as given (the CLI's ``--hp`` text, or a value the Python estimator
    JSON-encoded already: ``estimator.sdk_hyperparameters``); any other value is JSON-encoded,
    as the SageMaker SDK's script-mode estimators encode it, so a script that reads ``SM_HPS``
    gets back the value it was given (``False``, not the truthy string ``"False"``; a list or
    a dict, not its Python repr). Numpy scalars and arrays count as the numbers they hold.
    """
    return {str(name): _text(value) for name, value in given.items()}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=_plain)
    except (TypeError, ValueError):  # not JSON at all: its text, as before
        return str(value)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


class JobKind(enum.StrEnum):
    """What a job does."""

    TRAINING = "training"
    TUNING = "tuning"
    BATCH = "batch"


class JobStatus(enum.StrEnum):
    """SageMaker's training-job states. ``Stopping`` is asked for; the worker confirms."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED)


@dataclass(frozen=True, slots=True)
class Job:
    """One job and everything known about it.

    ``spec`` is the job's full, JSON-able request (algorithm or script, inputs, target…);
    ``metrics`` the final metrics; ``model_version`` the version it registered, if any.
    ``parent`` is the tuning job a trial belongs to; ``artifact`` the model package a trial
    staged (``StagedModel.to_dict()``), registered only if the trial turns out best.
    """

    name: str
    kind: JobKind
    model_name: str
    status: JobStatus
    spec: dict[str, Any]
    hyperparameters: dict[str, str]
    created_at: datetime
    metrics: dict[str, float] = field(default_factory=dict)
    failure_reason: str | None = None
    model_version: int | None = None
    log_digest: str | None = None
    pid: int | None = None
    host: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    parent: str | None = None
    artifact: dict[str, Any] | None = None
    heartbeat_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The job as it is shown (``--json``, ``jobs show``): every field, with the
        credentials that the URLs of its spec carry (a presigned input's signature, a
        password, a token) masked there and in the failure reason, which may quote them. The
        stored spec keeps them: the worker reads and writes through them."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["spec"] = mask_urls_in(self.spec)
        shown["failure_reason"] = self.shown_failure_reason
        return shown

    @property
    def shown_failure_reason(self) -> str | None:
        """The failure reason as it may be shown: the credentials of the spec's URLs masked
        (a reason may quote them: a library's error naming a presigned input, say)."""
        reason = self.failure_reason
        if reason:
            for url in urls_in(self.spec):
                reason = redact(reason, url)
        return reason

    @property
    def last_seen(self) -> datetime:
        """The latest sign of life: a heartbeat, the start, or the creation."""
        return self.heartbeat_at or self.started_at or self.created_at

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at or self.started_at
        return (end - self.started_at).total_seconds()
