"""Comparing a current profile with a baseline profile: per-feature drift, prediction drift,
data quality, and the dataset verdict (the rules are in ``modelyard.domain.drift``).

Every statistic that applies to a column's kind is computed (each costs a pass over at most a
few thousand shared buckets, never over rows); the configured one decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelyard.domain.drift import (
    APPLICABLE,
    SIGNIFICANCE,
    DriftConfig,
    DriftReport,
    FeatureDrift,
    Verdict,
)
from modelyard.monitoring.pairs import CategoricalPair, NumericPair
from modelyard.monitoring.profile import ColumnProfile, Profile
from modelyard.monitoring.quality import quality_issues
from modelyard.monitoring.stats import STATS, Pair

#: Predictions this close (``PREDICTION_TOLERANCE * max(1, |value|)``) compare as equal: the
#: compiled tree predictor (``modelyard.runtimes.trees.verify.TOLERANCE``) promises agreement
#: with the native model, whose predictions the baseline holds, only that closely.
PREDICTION_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Context:
    """What a report says about where its data came from (all optional)."""

    endpoint: str | None = None
    variant: str | None = None
    model: str = ""
    window_start: datetime | None = None
    window_end: datetime | None = None


def compare(
    baseline: Profile,
    current: Profile,
    config: DriftConfig | None = None,
    context: Context | None = None,
) -> DriftReport:
    """The drift report of ``current`` against ``baseline``.

    Features are the baseline's columns, in its order. A column the current data lacks drifts
    as one whose values vanished (see :func:`feature_drift`); a column whose type changed has
    verdict ``insufficient_data``; a quality issue says which.
    Predictions are compared when both profiles have them, values within
    :data:`PREDICTION_TOLERANCE` of each other as equal; they do not count in the drifted
    share.
    """
    config = config or DriftConfig()
    context = context or Context()
    features = tuple(_features(baseline, current, config))
    predictions: tuple[FeatureDrift, ...] = ()
    if baseline.predictions is not None and current.predictions is not None:
        predictions = tuple(
            _features(baseline.predictions, current.predictions, config, PREDICTION_TOLERANCE)
        )
    judged = [f for f in features if f.verdict is not Verdict.INSUFFICIENT_DATA]
    share = None
    verdict = Verdict.INSUFFICIENT_DATA
    if judged:
        share = sum(f.verdict is Verdict.DRIFT for f in judged) / len(judged)
        verdict = Verdict.DRIFT if share >= config.drift_share else Verdict.NO_DRIFT
    return DriftReport(
        endpoint=context.endpoint,
        variant=context.variant,
        model=context.model,
        window_start=context.window_start,
        window_end=context.window_end,
        baseline_rows=baseline.row_count,
        current_rows=current.row_count,
        features=features,
        predictions=predictions,
        quality=tuple(quality_issues(baseline, current, config)),
        verdict=verdict,
        drifted_share=share,
        config=config,
    )


def _features(
    baseline: Profile, current: Profile, config: DriftConfig, tolerance: float = 0.0
) -> list[FeatureDrift]:
    present = set(current.columns)
    return [
        feature_drift(
            column,
            current.column(column.name) if column.name in present else None,
            config,
            current.row_count,
            tolerance,
        )
        for column in baseline.column_profiles
    ]


def feature_drift(
    base: ColumnProfile,
    now: ColumnProfile | None,
    config: DriftConfig,
    current_rows: int | None = None,
    tolerance: float = 0.0,
) -> FeatureDrift:
    """The drift of one column (``now`` None: the current data lacks it; ``current_rows``: how
    many rows the current data has, when known; ``tolerance``: numbers this close, relative
    to ``max(1, |value|)``, compare as equal, see ``NumericPair.within``).

    A column whose values vanished (not one present in at least ``min_rows`` current rows,
    where the baseline had at least ``min_rows``) drifts, with no effect size: no statistic
    compares values with none, and calling it insufficient data would keep the commonest
    breakage upstream (a feature sent empty) out of the dataset's drifted share. A column
    missing from at least ``min_rows`` current rows vanished the same way: a file that lost
    25 of 30 features must not read ``no_drift`` on the other five."""
    kind = base.drift_kind
    test = config.test_for(kind)
    threshold = float(config.thresholds[test])
    pair = _pair(kind, base, now, tolerance)
    base_rows = _present(kind, base)
    now_rows = 0 if now is None or now.kind != base.kind else _present(kind, now)

    def without_effect(verdict: Verdict) -> FeatureDrift:
        return FeatureDrift(
            base.name, kind, test, None, threshold, None, base_rows, now_rows, verdict
        )  # fmt: skip

    # Not one value, of any kind (an empty column's kind is its type's guess: all None reads
    # as numbers); a text column whose lengths were dropped (a value not text) has values.
    if now is None:
        vanished = current_rows is not None and current_rows >= config.min_rows
    else:
        vanished = not now.present and now.rows >= config.min_rows
    if vanished and base_rows >= config.min_rows:
        return without_effect(Verdict.DRIFT)
    if pair is None or min(base_rows, now_rows) < config.min_rows:
        return without_effect(Verdict.INSUFFICIENT_DATA)
    results = {name: STATS[name].compute(pair) for name in APPLICABLE[kind]}
    effect = results[test].effect
    noise = STATS[test].noise(pair, config.alpha)
    p_value = results[SIGNIFICANCE[kind]].p_value
    drifted = (
        effect - (noise or 0.0) >= threshold and p_value is not None and p_value < config.alpha
    )
    ordered = (results[test], *(r for name, r in results.items() if name != test))
    return FeatureDrift(
        base.name,
        kind,
        test,
        effect,
        threshold,
        p_value,
        base_rows,
        now_rows,
        Verdict.DRIFT if drifted else Verdict.NO_DRIFT,
        ordered,
        noise,
    )


def _pair(
    kind: str, base: ColumnProfile, now: ColumnProfile | None, tolerance: float = 0.0
) -> Pair | None:
    """The aligned sketches of a column, or None when it cannot be compared (absent, of
    another type, or without values on a side)."""
    if now is None or now.kind != base.kind:
        return None
    if kind == "categorical":
        a, b = base.categories, now.categories
        if a is None or b is None or not a.total or not b.total:
            return None
        return CategoricalPair.of(a, b)
    x, y = (base.lengths, now.lengths) if kind == "text" else (base.numbers, now.numbers)
    if x is None or y is None or not x.count or not y.count:
        return None
    return NumericPair.of(x, y, tolerance if kind == "numeric" else 0.0)


def _present(kind: str, column: ColumnProfile) -> int:
    if kind == "text":
        return column.lengths.count if column.lengths is not None else 0
    return column.present
