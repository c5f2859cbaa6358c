"""A shadow variant against production over one window: what ``modelyard deployments compare``
reports, and its JSON form (``to_dict``: the CLI's ``--json`` and any API print the same thing).

A shadow variant gets a copy of the requests production answers; both sides' captured
predictions carry the request's inference id, so they pair up by inference id and row. A
comparison holds:

- the rows each side captured in the window and the pairs joined from them;
- for a classifier, how often the two predicted the same class and which class pairs they
  disagreed on most (:class:`Agreement`); for a regressor, the distribution of
  ``shadow - production`` (:class:`Differences`);
- how far apart the two prediction distributions are (a drift statistic of the two samples:
  Jensen-Shannon for classes, Kolmogorov-Smirnov with Wasserstein beside it for numbers);
- what each side served, from the per-minute metric series (:class:`ServingComparison`);
- the quality of both sides on the pairs that received labels (``QualityPoint`` per variant).

Below ``min_pairs`` pairs the status is INSUFFICIENT_DATA and no agreement rate or difference
statistic is given (their counts are), so a handful of requests never reads as a verdict.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelyard.domain.drift import FeatureDrift
from modelyard.domain.quality import QualityPoint, Task
from modelyard.errors import InvalidInput


class ComparisonStatus(enum.StrEnum):
    """Whether the window held enough pairs for the agreement or differences to mean much."""

    OK = "ok"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True, slots=True)
class ShadowCompareConfig:
    """Settings of a comparison.

    Attributes:
        min_pairs: Fewer paired predictions give INSUFFICIENT_DATA: no agreement rate, no
            difference statistics, and quality verdicts need as many labelled pairs.
        rel_tolerance, abs_tolerance: A regression pair agrees when
            ``|shadow - production| <= max(abs_tolerance, rel_tolerance * |production|)``.
        top_pairs: How many (production class, shadow class) disagreements are listed.
    """

    min_pairs: int = 30
    rel_tolerance: float = 0.01
    abs_tolerance: float = 1e-9
    top_pairs: int = 10

    def __post_init__(self) -> None:
        for name in ("min_pairs", "top_pairs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a whole number of at least 1, got {value!r}")
        for name in ("rel_tolerance", "abs_tolerance"):
            value = getattr(self, name)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value < 0:
                raise InvalidInput(f"{name} must be a number of at least 0, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_pairs": self.min_pairs,
            "rel_tolerance": self.rel_tolerance,
            "abs_tolerance": self.abs_tolerance,
            "top_pairs": self.top_pairs,
        }


@dataclass(frozen=True, slots=True)
class ClassPair:
    """Pairs where production predicted ``production`` and the shadow ``shadow``: ``count``
    of them, ``share`` of all compared pairs (None below ``min_pairs`` of them)."""

    production: str
    shadow: str
    count: int
    share: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "production": self.production,
            "shadow": self.shadow,
            "count": self.count,
            "share": self.share,
        }


@dataclass(frozen=True, slots=True)
class Agreement:
    """How often a classifier shadow predicted production's class.

    Attributes:
        compared: Pairs whose classes could be read on both sides.
        agreed: Of those, pairs with the same class.
        rate: ``agreed / compared``; None below ``min_pairs`` compared pairs.
        unreadable: Pairs left out because a side's output names no class (null, a shape
            its model's task does not read).
        disagreements: The most frequent disagreeing class pairs, most frequent first.
    """

    compared: int
    agreed: int
    rate: float | None
    unreadable: int
    disagreements: tuple[ClassPair, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "agreed": self.agreed,
            "rate": self.rate,
            "unreadable": self.unreadable,
            "disagreements": [p.to_dict() for p in self.disagreements],
        }


@dataclass(frozen=True, slots=True)
class Differences:
    """The distribution of ``shadow - production`` for a regressor (``abs``: of its absolute
    value); every statistic None below ``min_pairs`` compared pairs.

    Attributes:
        compared: Pairs with a number on both sides; ``unreadable`` those without.
        within_tolerance: The share of pairs within the config's tolerance.
    """

    compared: int
    unreadable: int
    mean: float | None
    mean_abs: float | None
    p50_abs: float | None
    p90_abs: float | None
    p99_abs: float | None
    max_abs: float | None
    within_tolerance: float | None
    rel_tolerance: float
    abs_tolerance: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "unreadable": self.unreadable,
            "mean": self.mean,
            "mean_abs": self.mean_abs,
            "p50_abs": self.p50_abs,
            "p90_abs": self.p90_abs,
            "p99_abs": self.p99_abs,
            "max_abs": self.max_abs,
            "within_tolerance": self.within_tolerance,
            "rel_tolerance": self.rel_tolerance,
            "abs_tolerance": self.abs_tolerance,
        }


@dataclass(frozen=True, slots=True)
class ServingSide:
    """What one side (production's variants together, or the shadow) served in the window,
    every server's per-minute rows merged; latencies None without requests."""

    variants: tuple[str, ...]
    requests: int
    errors: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "variants": list(self.variants),
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
        }


@dataclass(frozen=True, slots=True)
class ServingComparison:
    """Production and the shadow as served.

    Attributes:
        error_rate_z, error_rate_p_value: The two-proportion z statistic of the shadow's
            error rate minus production's, and its one-sided p-value (the chance of a shadow
            rate this much higher if both were equal); None when a side served nothing.
        latency_p99_ratio: Shadow p99 / production p99; None when either is unknown.
    """

    production: ServingSide
    shadow: ServingSide
    error_rate_z: float | None
    error_rate_p_value: float | None
    latency_p99_ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "production": self.production.to_dict(),
            "shadow": self.shadow.to_dict(),
            "error_rate_z": self.error_rate_z,
            "error_rate_p_value": self.error_rate_p_value,
            "latency_p99_ratio": self.latency_p99_ratio,
        }


@dataclass(frozen=True, slots=True)
class ShadowComparison:
    """A shadow variant against production over ``[since, until)`` (see the module docstring).

    Attributes:
        endpoint, shadow, shadow_model: The endpoint, the shadow variant and its ``name:version``.
        production: The production variants (those that answer requests).
        task: How predictions were read; None when nothing told (nothing to compare).
        production_rows, shadow_rows: Rows each side captured in the window.
        pairs: Rows of both sides with the same inference id and row.
        agreement: For a classifier; ``differences``: for a regressor (the other is None).
        distribution: The two prediction samples of the pairs compared as a drift test
            compares a feature (production in the baseline's place); None without pairs.
        labelled: Pairs with a label; ``quality``: one point per variant and model, each
            scored on those pairs only (INSUFFICIENT_DATA below ``min_pairs`` of them).
        notes: What the reader should know (too few pairs, capture sampling, unread rows).
    """

    endpoint: str
    shadow: str
    shadow_model: str
    production: tuple[str, ...]
    since: datetime
    until: datetime
    task: Task | None
    production_rows: int
    shadow_rows: int
    pairs: int
    status: ComparisonStatus
    config: ShadowCompareConfig
    agreement: Agreement | None
    differences: Differences | None
    distribution: FeatureDrift | None
    serving: ServingComparison
    labelled: int
    quality: tuple[QualityPoint, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "shadow": self.shadow,
            "shadow_model": self.shadow_model,
            "production": list(self.production),
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "task": self.task.value if self.task else None,
            "production_rows": self.production_rows,
            "shadow_rows": self.shadow_rows,
            "pairs": self.pairs,
            "status": self.status.value,
            "config": self.config.to_dict(),
            "agreement": self.agreement.to_dict() if self.agreement else None,
            "differences": self.differences.to_dict() if self.differences else None,
            "distribution": self.distribution.to_dict() if self.distribution else None,
            "serving": self.serving.to_dict(),
            "labelled": self.labelled,
            "quality": [p.to_dict() for p in self.quality],
            "notes": list(self.notes),
        }
