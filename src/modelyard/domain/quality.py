"""Model quality over time ("concept drift"): labelled predictions scored per window and variant,
and compared with the model version's validation metrics.

A :class:`QualityPoint` is one window of one variant's predictions by one model version that
received labels: classifiers get accuracy, precision, recall, F1 and ROC AUC, regressors RMSE
and MAE. Each metric the version's validation run also measured is compared with it; a metric
worse than validation by more than :attr:`QualityConfig.max_relative_drop` (relative) is
degraded. Fewer labelled rows than :attr:`QualityConfig.min_rows` give INSUFFICIENT_DATA, never
"ok", and so does a window where none of the validated metrics is defined (ROC AUC with one
class labelled); a window without labels gives no metric values at all (None).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelyard.errors import InvalidInput


class Task(enum.StrEnum):
    """What the model predicts."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class QualityStatus(enum.StrEnum):
    """The verdict of one window."""

    OK = "ok"
    DEGRADED = "degraded"
    INSUFFICIENT_DATA = "insufficient_data"
    NO_BASELINE = "no_baseline"  # enough labels, but no validation metric to compare with


#: The metrics of each task, in the order they are shown.
METRICS: dict[Task, tuple[str, ...]] = {
    Task.CLASSIFICATION: ("accuracy", "precision", "recall", "f1", "roc_auc"),
    Task.REGRESSION: ("rmse", "mae"),
}
#: The most windows one quality read scores (a day of minutes): each is a pass over the labels,
#: and a one-second window over a month would be millions of them.
MAX_WINDOWS = 1440
#: Metrics where lower is better; every other one is better higher.
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
#: Where a version's validation value of each metric is found among its metrics, first found
#: wins: training jobs record ``validation:<name>`` (SageMaker's names, ``auc`` for ROC AUC);
#: a registered model may carry plain names.
VALIDATION_KEYS: dict[str, tuple[str, ...]] = {
    "roc_auc": ("validation:auc", "validation:roc_auc", "auc", "roc_auc"),
    **{m: (f"validation:{m}", m) for m in ("accuracy", "precision", "recall", "f1", "rmse", "mae")},
}


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """Thresholds of the quality verdict.

    Attributes:
        max_relative_drop: A metric is degraded when it is worse than its validation value by
            more than this share of it (0.1: accuracy 0.90 → below 0.81; RMSE 2.0 → above 2.2).
        min_rows: Fewer labelled rows in a window give INSUFFICIENT_DATA.
    """

    max_relative_drop: float = 0.10
    min_rows: int = 30

    def __post_init__(self) -> None:
        drop = self.max_relative_drop
        if isinstance(drop, bool) or not isinstance(drop, int | float) or not 0 < drop < math.inf:
            raise InvalidInput(f"max_relative_drop must be a number above 0, got {drop!r}")
        rows = self.min_rows
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise InvalidInput(f"min_rows must be a whole number of at least 1, got {rows!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"max_relative_drop": self.max_relative_drop, "min_rows": self.min_rows}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> QualityConfig:
        data = data or {}
        default = cls()
        return cls(
            max_relative_drop=data.get("max_relative_drop", default.max_relative_drop),
            min_rows=data.get("min_rows", default.min_rows),
        )


def relative_worsening(name: str, value: float, baseline: float) -> float:
    """How much worse ``value`` is than ``baseline``, as a share of it (negative: better).
    A zero baseline makes any worsening infinite and no change zero."""
    worse = value - baseline if name in LOWER_IS_BETTER else baseline - value
    if baseline == 0:
        return 0.0 if worse == 0 else math.copysign(math.inf, worse)
    return worse / abs(baseline)


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric of a window against the version's validation value."""

    name: str
    value: float
    baseline: float
    relative_change: float  # positive: worse than validation, by that share of it
    degraded: bool

    def to_dict(self) -> dict[str, Any]:
        change = self.relative_change
        return {
            "name": self.name,
            "value": self.value,
            "baseline": self.baseline,
            "relative_change": change if math.isfinite(change) else str(change),
            "degraded": self.degraded,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricComparison:
        return cls(
            name=str(data["name"]),
            value=float(data["value"]),
            baseline=float(data["baseline"]),
            relative_change=float(data["relative_change"]),
            degraded=bool(data["degraded"]),
        )


@dataclass(frozen=True, slots=True)
class QualityPoint:
    """The quality of one variant's predictions by one model version in ``[start, end)``.

    ``metrics`` has every metric of ``task`` (None where it is undefined: no labels, ROC AUC
    without captured probabilities or with one class only); ``rows`` counts the labelled
    predictions; ``notes`` says why a metric is missing.
    """

    endpoint: str
    variant: str
    model: str  # name:version
    start: datetime
    end: datetime
    task: Task | None
    rows: int
    metrics: dict[str, float | None]
    comparisons: tuple[MetricComparison, ...]
    status: QualityStatus
    notes: tuple[str, ...] = ()

    @property
    def degraded(self) -> list[str]:
        """The names of the degraded metrics."""
        return [c.name for c in self.comparisons if c.degraded]

    def scores(self) -> dict[str, float]:
        """Alarm-readable values: ``quality.<metric>`` for each defined metric, and
        ``quality.rows``."""
        out = {f"quality.{k}": v for k, v in self.metrics.items() if v is not None}
        out["quality.rows"] = float(self.rows)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "variant": self.variant,
            "model": self.model,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "task": self.task.value if self.task else None,
            "rows": self.rows,
            "metrics": dict(self.metrics),
            "comparisons": [c.to_dict() for c in self.comparisons],
            "status": self.status.value,
            "degraded": self.degraded,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityPoint:
        task = data.get("task")
        return cls(
            endpoint=str(data["endpoint"]),
            variant=str(data["variant"]),
            model=str(data["model"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            task=Task(task) if task else None,
            rows=int(data["rows"]),
            metrics={str(k): None if v is None else float(v) for k, v in data["metrics"].items()},
            comparisons=tuple(MetricComparison.from_dict(c) for c in data["comparisons"]),
            status=QualityStatus(data["status"]),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )
