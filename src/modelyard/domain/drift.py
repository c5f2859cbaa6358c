"""Drift reports: per-feature test results, data-quality issues and the verdicts on them.

A feature drifts when its *effect size* (how far apart the two distributions are) reaches a
threshold, so that a million rows do not turn a negligible shift into an alarm; and when it
does so beyond sampling noise, so that a hundred rows' noise is not taken for a shift either:

- the effect minus its noise bound (the most sampling noise moves it, at level ``alpha``) must
  reach the threshold; the bound shrinks like 1/sqrt(rows), so at a million rows the rule is
  effect >= threshold, and at a hundred a shift must be large to count;
- the p-value of the kind's significance test (Kolmogorov-Smirnov for numbers and text
  lengths, chi-square for categories) must be below ``alpha``.

Below ``min_rows`` present values on either side the verdict is ``insufficient_data``, never
``no_drift`` -- except for a feature whose values vanished (none present in at least
``min_rows`` current rows, where the baseline had ``min_rows``): it drifts, without an effect
size. The dataset drifts when the share of drifted features (among those with a
verdict) reaches ``drift_share``.

Every record has ``to_dict``/``from_dict`` (JSON-able: the CLI's ``--json``, the REST API and
stored monitor runs print the same thing).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any

from modelyard.errors import InvalidInput

#: Alarm-readable drift scores (:meth:`DriftReport.scores`): the dataset's drifted share, the
#: prediction's largest effect (``drift.prediction.<column>`` per column when there are several)
#: and one per feature under its own prefix, so no feature name (``share``, ``prediction``)
#: can collide with a fixed score.
SHARE_SCORE = "drift.share"
PREDICTION_SCORE = "drift.prediction"
FEATURE_SCORE_PREFIX = "drift.feature."


def feature_score(feature: str) -> str:
    """The score name of ``feature``'s effect: ``drift.feature.<feature>``."""
    return f"{FEATURE_SCORE_PREFIX}{feature}"


#: Drift statistics by name (implemented in ``modelyard.monitoring.stats``).
STATISTICS = ("ks", "psi", "wasserstein", "chi_square", "jensen_shannon")
#: The statistics that are never above 1 (KS, the Jensen-Shannon distance in base 2, Cramér's
#: V): a threshold above it would never call drift. PSI and Wasserstein have no upper end.
AT_MOST_ONE = frozenset({"ks", "jensen_shannon", "chi_square"})
#: Which statistics apply to each column kind (text columns are compared by their lengths).
APPLICABLE: Mapping[str, tuple[str, ...]] = {
    "numeric": ("ks", "psi", "wasserstein", "jensen_shannon"),
    "categorical": ("jensen_shannon", "chi_square", "psi"),
    "text": ("ks", "psi", "wasserstein", "jensen_shannon"),
}
#: The test whose p-value gates the verdict, per kind.
SIGNIFICANCE = {"numeric": "ks", "categorical": "chi_square", "text": "ks"}
DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType(
    {
        "ks": 0.03,  # the largest gap between the two cumulative distributions
        "psi": 0.1,
        "wasserstein": 0.1,  # in baseline standard deviations
        "chi_square": 0.1,  # Cramér's V
        "jensen_shannon": 0.1,
    }
)


class Verdict(enum.StrEnum):
    """A feature's or a dataset's drift verdict."""

    NO_DRIFT = "no_drift"
    DRIFT = "drift"
    INSUFFICIENT_DATA = "insufficient_data"


def overall(verdicts: Iterable[Verdict]) -> Verdict:
    """One verdict for several checks: drift when any drifted, else insufficient_data when any
    had too little data (a check without data never passes), else no_drift."""
    seen = set(verdicts)
    if Verdict.DRIFT in seen:
        return Verdict.DRIFT
    if Verdict.INSUFFICIENT_DATA in seen or not seen:
        return Verdict.INSUFFICIENT_DATA
    return Verdict.NO_DRIFT


class SmallBaseline(UserWarning):
    """A baseline was set from fewer rows than a drift check needs (:func:`small_baseline`)."""


def small_baseline(rows: int, config: DriftConfig | None = None) -> str | None:
    """A warning for a baseline of ``rows`` rows, fewer than a check needs on each side
    (``config``'s ``min_rows``; the default's when None); None when it has enough."""
    least = (config or DriftConfig()).min_rows
    if rows >= least:
        return None
    return (
        f"the baseline holds {rows:,} row(s); a drift check needs {least} present values on "
        "each side (min_rows), so every check against it says insufficient_data until a "
        "larger baseline is set or min_rows is lowered"
    )


@dataclass(frozen=True)
class DriftConfig:
    """Every threshold of a drift comparison.

    Attributes:
        min_rows: Fewer present values than this on either side: ``insufficient_data``.
        alpha: The significance level: a feature's p-value must be below it, and its noise
            bound holds with this probability (a bound on the false-alarm rate per feature).
        drift_share: The dataset drifts when at least this share of its features drift.
        numeric_test, categorical_test, text_test: The statistic whose effect size decides,
            per kind.
        thresholds: Effect size at or above which a statistic calls drift, per statistic.
        completeness_drop: Quality: a column whose share of present values falls by more than
            this against the baseline is reported.
    """

    min_rows: int = 100
    alpha: float = 0.05
    drift_share: float = 0.5
    numeric_test: str = "ks"
    categorical_test: str = "jensen_shannon"
    text_test: str = "ks"
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    completeness_drop: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.min_rows, int) or self.min_rows < 1:
            raise InvalidInput(f"min_rows must be at least 1, got {self.min_rows}")
        for name in ("alpha", "drift_share", "completeness_drop"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value <= 1):
                raise InvalidInput(f"{name} must be in (0, 1], got {value}")
        for kind in APPLICABLE:
            test = getattr(self, f"{kind}_test")
            if test not in APPLICABLE[kind]:
                raise InvalidInput(
                    f"{test!r} cannot test {kind} columns; choose one of "
                    f"{', '.join(APPLICABLE[kind])}"
                )
        if not isinstance(self.thresholds, Mapping):
            raise InvalidInput(
                f"thresholds must map statistic names to numbers, got {self.thresholds!r}"
            )
        unknown = sorted(set(self.thresholds) - set(STATISTICS))
        if unknown:
            raise InvalidInput(
                f"no drift statistic named {', '.join(unknown)}; known: {', '.join(STATISTICS)}"
            )
        for name, value in self.thresholds.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise InvalidInput(f"the {name} threshold must be a number >= 0, got {value!r}")
            if name in AT_MOST_ONE and value > 1:
                raise InvalidInput(
                    f"the {name} threshold must be from 0 to 1 (the statistic is never above "
                    f"1, so it would never call drift), got {value!r}"
                )
        # Thresholds not given keep their defaults.
        object.__setattr__(self, "thresholds", {**DEFAULT_THRESHOLDS, **self.thresholds})

    def test_for(self, kind: str) -> str:
        """The deciding statistic for a column kind (``numeric``, ``categorical``, ``text``)."""
        return str(getattr(self, f"{kind}_test"))

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["thresholds"] = dict(sorted(self.thresholds.items()))
        return out

    def changes(self) -> dict[str, Any]:
        """What differs from the defaults, as :meth:`to_dict` shapes it (``thresholds``:
        only the statistics whose threshold differs); :meth:`from_dict` rebuilds this
        config from it."""
        mine, defaults = self.to_dict(), DriftConfig().to_dict()
        out = {k: v for k, v in mine.items() if k != "thresholds" and v != defaults[k]}
        thresholds = {k: v for k, v in mine["thresholds"].items() if v != defaults["thresholds"][k]}
        if thresholds:
            out["thresholds"] = thresholds
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DriftConfig:
        """Rebuild from :meth:`to_dict` output or user-written JSON (missing keys default).

        Raises:
            InvalidInput: an unknown key (named), or a value out of range.
        """
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(
                f"unknown drift setting {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInput(f"invalid drift settings: {exc}") from None


@dataclass(frozen=True)
class StatResult:
    """One drift statistic on one feature: its effect size and p-value (None if it has
    none)."""

    test: str
    effect: float
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"test": self.test, "effect": self.effect, "p_value": self.p_value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatResult:
        p = data.get("p_value")
        return cls(str(data["test"]), float(data["effect"]), None if p is None else float(p))


@dataclass(frozen=True)
class FeatureDrift:
    """The drift of one feature (or one prediction column).

    Attributes:
        name: The column.
        kind: ``numeric``, ``categorical`` or ``text``.
        test: The statistic the verdict rests on; ``effect`` is its value (None when there
            was too little data to compute it).
        threshold: The effect size at or above which it drifts.
        noise: How far sampling noise alone can move the effect at these row counts (None
            when the statistic has no such bound); ``effect - noise`` must reach the
            threshold.
        p_value: The p-value of the kind's significance test (KS or chi-square).
        baseline_rows, current_rows: Present values on each side.
        verdict: See the module docstring.
        stats: Every statistic computed, the deciding one included.
    """

    name: str
    kind: str
    test: str
    effect: float | None
    threshold: float
    p_value: float | None
    baseline_rows: int
    current_rows: int
    verdict: Verdict
    stats: tuple[StatResult, ...] = ()
    noise: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "test": self.test,
            "effect": self.effect,
            "threshold": self.threshold,
            "noise": self.noise,
            "p_value": self.p_value,
            "baseline_rows": self.baseline_rows,
            "current_rows": self.current_rows,
            "verdict": self.verdict.value,
            "stats": [s.to_dict() for s in self.stats],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDrift:
        effect, p, noise = data.get("effect"), data.get("p_value"), data.get("noise")
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            test=str(data["test"]),
            effect=None if effect is None else float(effect),
            threshold=float(data["threshold"]),
            p_value=None if p is None else float(p),
            baseline_rows=int(data["baseline_rows"]),
            current_rows=int(data["current_rows"]),
            verdict=Verdict(data["verdict"]),
            stats=tuple(StatResult.from_dict(s) for s in data.get("stats", ())),
            noise=None if noise is None else float(noise),
        )


@dataclass(frozen=True)
class QualityIssue:
    """A data-quality finding about one column.

    Attributes:
        check: ``missing_column``, ``extra_column``, ``completeness``, ``type_change``,
            ``new_categories``; or about the window: ``no_baseline``, ``redacted``,
            ``unreadable_capture`` (damaged captured files left out).
        column: The column concerned.
        message: One sentence for people.
        baseline, current: The compared values (a share, a kind, categories), if any.
    """

    check: str
    column: str
    message: str
    baseline: Any = None
    current: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "column": self.column,
            "message": self.message,
            "baseline": self.baseline,
            "current": self.current,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityIssue:
        return cls(
            str(data["check"]),
            str(data["column"]),
            str(data["message"]),
            data.get("baseline"),
            data.get("current"),
        )


@dataclass(frozen=True)
class DriftReport:
    """One comparison of a window (or a dataset) with a model version's baseline.

    Attributes:
        endpoint, variant: What was watched (None for a comparison outside any endpoint).
        model: The model version whose baseline was used (``name:version``).
        window_start, window_end: The captured window (None for a dataset from a file).
        baseline_rows, current_rows: Rows on each side.
        features: One result per input feature of the baseline, in its column order.
        predictions: One result per prediction column (empty without a prediction baseline).
        quality: Data-quality issues.
        verdict: The dataset's verdict.
        drifted_share: Drifted features over features with a verdict (None when none had).
        config: The thresholds used.
    """

    endpoint: str | None
    variant: str | None
    model: str
    window_start: datetime | None
    window_end: datetime | None
    baseline_rows: int
    current_rows: int
    features: tuple[FeatureDrift, ...]
    predictions: tuple[FeatureDrift, ...]
    quality: tuple[QualityIssue, ...]
    verdict: Verdict
    drifted_share: float | None
    config: DriftConfig = field(default_factory=DriftConfig)

    @property
    def drifted(self) -> list[str]:
        """Names of the drifted features."""
        return [f.name for f in self.features if f.verdict is Verdict.DRIFT]

    def scores(self) -> dict[str, float]:
        """Alarm-readable scores: ``drift.share``, ``drift.feature.<feature>`` (the deciding
        effect size) and ``drift.prediction`` (the largest effect over prediction columns, with
        ``drift.prediction.<column>`` each when there are several). A score without data is
        left out, so an alarm on it sees no data rather than a reassuring zero."""
        out: dict[str, float] = {}
        if self.drifted_share is not None and self.verdict is not Verdict.INSUFFICIENT_DATA:
            out[SHARE_SCORE] = self.drifted_share
        for feature in self.features:
            if feature.effect is not None and feature.verdict is not Verdict.INSUFFICIENT_DATA:
                out[feature_score(feature.name)] = feature.effect
        measured = [
            p
            for p in self.predictions
            if p.effect is not None and p.verdict is not Verdict.INSUFFICIENT_DATA
        ]
        if measured:
            out[PREDICTION_SCORE] = max(float(p.effect or 0.0) for p in measured)
            if len(self.predictions) > 1:
                for p in measured:
                    out[f"{PREDICTION_SCORE}.{p.name}"] = float(p.effect or 0.0)
        return out

    def no_verdict_reason(self) -> str | None:
        """Why there is no verdict (``insufficient_data``), in words; None when there is one.
        A check that judged nothing must say why, or it reads like a passed one."""
        if self.verdict is not Verdict.INSUFFICIENT_DATA:
            return None
        if any(q.check == "no_baseline" for q in self.quality):
            return "no baseline"
        where = "in the window" if self.window_start is not None else "in the data"
        if not self.current_rows:
            return f"no rows {where}"
        least = self.config.min_rows
        if self.baseline_rows < least:
            return f"the baseline holds {self.baseline_rows:,} row(s), fewer than {least}"
        if self.current_rows < least:
            return f"{self.current_rows:,} row(s) {where}, fewer than {least}"
        return f"no feature has {least} present values on both sides"

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "variant": self.variant,
            "model": self.model,
            "window_start": _time(self.window_start),
            "window_end": _time(self.window_end),
            "baseline_rows": self.baseline_rows,
            "current_rows": self.current_rows,
            "verdict": self.verdict.value,
            "drifted_share": self.drifted_share,
            "drifted": self.drifted,
            "features": [f.to_dict() for f in self.features],
            "predictions": [p.to_dict() for p in self.predictions],
            "quality": [q.to_dict() for q in self.quality],
            "scores": self.scores(),
            "config": self.config.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        share = data.get("drifted_share")
        return cls(
            endpoint=data.get("endpoint"),
            variant=data.get("variant"),
            model=str(data["model"]),
            window_start=_parse_time(data.get("window_start")),
            window_end=_parse_time(data.get("window_end")),
            baseline_rows=int(data["baseline_rows"]),
            current_rows=int(data["current_rows"]),
            features=tuple(FeatureDrift.from_dict(f) for f in data.get("features", ())),
            predictions=tuple(FeatureDrift.from_dict(p) for p in data.get("predictions", ())),
            quality=tuple(QualityIssue.from_dict(q) for q in data.get("quality", ())),
            verdict=Verdict(data["verdict"]),
            drifted_share=None if share is None else float(share),
            config=DriftConfig.from_dict(data.get("config")),
        )


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))
