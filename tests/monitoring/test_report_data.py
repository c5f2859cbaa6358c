"""What the report draws is read from the real sketches and series: distributions on shared
bins that match the data, and per-minute series cut to a chart's width without inventing zeros."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from modelyard.monitoring.frequencies import Frequencies
from modelyard.monitoring.profile import Profile
from modelyard.monitoring.report_distributions import (
    BINS,
    OTHER,
    column_distribution,
    distribution,
)
from modelyard.monitoring.report_model import CategoricalDistribution, NumericDistribution
from modelyard.monitoring.report_series import MAX_POINTS, bucketed
from modelyard.monitoring.sketch import NumericSketch

RNG = np.random.default_rng(20260301)


def _share_between(values: np.ndarray, low: float, high: float) -> float:
    return float(np.mean((values >= low) & (values < high)))


def test_numeric_shares_match_the_data_on_shared_bins() -> None:
    base = RNG.normal(0.0, 1.0, 50_000)
    now = RNG.normal(1.0, 1.0, 20_000)
    dist = distribution(NumericSketch.of(base), NumericSketch.of(now))

    assert isinstance(dist, NumericDistribution)
    assert len(dist.edges) == BINS + 1 and len(dist.baseline) == len(dist.current) == BINS
    assert list(dist.edges) == sorted(dist.edges)
    # The central 99 % of both sides is binned: the range reaches both sides' tails.
    assert dist.edges[0] < np.quantile(base, 0.01) and dist.edges[-1] > np.quantile(now, 0.99)
    assert sum(dist.baseline) == pytest.approx(1.0) and sum(dist.current) == pytest.approx(1.0)
    # An inner bin's share is the data's share there (the sketch's bucket width at most).
    for i in range(5, BINS - 5, 4):
        low, high = dist.edges[i], dist.edges[i + 1]
        assert dist.baseline[i] == pytest.approx(_share_between(base, low, high), abs=0.01)
        assert dist.current[i] == pytest.approx(_share_between(now, low, high), abs=0.01)
    # The shift shows: the current mass sits to the right of the baseline's.
    mids = np.diff(dist.edges) / 2 + np.array(dist.edges[:-1])
    assert np.dot(mids, dist.current) - np.dot(mids, dist.baseline) == pytest.approx(1.0, abs=0.1)


def test_a_few_distinct_values_get_one_bin_each_with_exact_shares() -> None:
    base = np.array([1, 2, 2, 3, 3, 3, 4, 4, 4, 4], dtype=float)
    now = np.array([3, 4, 5, 5], dtype=float)
    dist = distribution(NumericSketch.of(base), NumericSketch.of(now))

    assert isinstance(dist, NumericDistribution)
    assert dist.edges == (0.5, 1.5, 2.5, 3.5, 4.5, 5.5)
    assert dist.baseline == pytest.approx((0.1, 0.2, 0.3, 0.4, 0.0))
    assert dist.current == pytest.approx((0.0, 0.0, 0.25, 0.25, 0.5))


def test_a_constant_column_gets_one_bin() -> None:
    dist = distribution(NumericSketch.of([7.0] * 20), NumericSketch.of([7.0] * 3))
    assert dist == NumericDistribution((6.5, 7.5), (1.0,), (1.0,))


def test_a_side_without_values_gives_nothing_to_draw() -> None:
    values = NumericSketch.of([1.0, 2.0])
    assert distribution(values, NumericSketch.of([np.nan, np.nan])) is None
    assert distribution(NumericSketch.of([]), values) is None
    empty = Frequencies.of(pd.Series([None, None], dtype=object))
    assert distribution(Frequencies.of(pd.Series(["a"])), empty) is None
    # A column whose type changed is a quality issue, not a picture.
    assert distribution(values, Frequencies.of(pd.Series(["a"]))) is None


LARGEST = float(np.finfo(np.float64).max)


@pytest.mark.parametrize(
    ("base", "now"),
    [
        # A few distinct values and one caller's value at the end of the float range.
        ([0.0, 1.0, 2.0] * 10, [0.0, 1.0, LARGEST]),
        ([0.0, 1.0, 2.0] * 10, [-LARGEST, 1.0, 2.0]),
        ([-LARGEST, LARGEST] * 5, [-LARGEST, LARGEST]),
        ([LARGEST] * 5, [LARGEST]),  # one value, no float above it
        ([1e300] * 5, [1e300]),  # one value, 0.5 below its precision
        # Many values over the whole float range: the binned range is wider than a float.
        (list(np.linspace(-1.0, 1.0, 2000) * LARGEST), list(np.linspace(-0.9, 1.0, 900) * LARGEST)),
    ],
)
def test_values_at_the_ends_of_the_float_range_get_finite_increasing_edges(
    base: list[float], now: list[float]
) -> None:
    dist = distribution(NumericSketch.of(base), NumericSketch.of(now))

    assert isinstance(dist, NumericDistribution)
    edges = np.array(dist.edges)
    assert np.all(np.isfinite(edges)), dist.edges
    assert np.all(np.diff(edges) >= 0) and edges[-1] > edges[0], dist.edges
    if len(set(base + now)) <= BINS:  # one bin per value: every value inside the edges
        assert edges[0] <= min(base + now) and edges[-1] >= max(base + now)
    assert sum(dist.baseline) == pytest.approx(1.0) and sum(dist.current) == pytest.approx(1.0)


def test_categories_show_the_largest_shares_and_sum_the_rest() -> None:
    letters = list("abcdefghijklmnopqrstuvwxyz")
    base = pd.Series(RNG.choice(letters, 10_000))
    now = pd.Series(RNG.choice(["a", "b", "new"], 1_000, p=[0.5, 0.3, 0.2]))
    dist = distribution(Frequencies.of(base), Frequencies.of(now))

    assert isinstance(dist, CategoricalDistribution)
    assert dist.categories[:3] == ("a", "b", "new")
    assert dist.categories[-1] == OTHER and len(dist.categories) == 13
    shown = dict(zip(dist.categories, dist.current, strict=True))
    assert shown["new"] == pytest.approx(float(np.mean(now == "new")))
    assert sum(dist.baseline) == pytest.approx(1.0) and sum(dist.current) == pytest.approx(1.0)
    assert dict(zip(dist.categories, dist.baseline, strict=True))["new"] == 0.0


def test_profile_columns_are_drawn_the_way_their_drift_was_tested() -> None:
    words = [f"word-{i}-" + "x" * (i % 7) for i in range(3000)]  # too many to count: text
    frame = pd.DataFrame(
        {
            "age": RNG.integers(18, 90, 2000).astype(float),
            "plan": RNG.choice(["free", "pro"], 2000),
            "note": RNG.choice(words, 2000),
        }
    )
    base = Profile.from_frame(frame, predictions=RNG.random(2000))
    now = Profile.from_frame(frame.iloc[:500], predictions=RNG.random(500))

    assert isinstance(column_distribution(base, now, "age", "numeric"), NumericDistribution)
    plan = column_distribution(base, now, "plan", "categorical")
    assert isinstance(plan, CategoricalDistribution) and set(plan.categories) == {"free", "pro"}
    note = column_distribution(base, now, "note", "text")  # by the lengths of its strings
    assert isinstance(note, NumericDistribution) and note.edges[0] < 8 < note.edges[-1]
    assert base.predictions is not None and now.predictions is not None
    predicted = column_distribution(base.predictions, now.predictions, "prediction", "numeric")
    assert isinstance(predicted, NumericDistribution)
    assert column_distribution(base, now, "missing", "numeric") is None


START = datetime(2026, 3, 1, tzinfo=UTC)


def _minutes(values: list[float | None]) -> list[tuple[datetime, float | None]]:
    return [(START + timedelta(minutes=i), v) for i, v in enumerate(values)]


def test_a_short_window_keeps_every_minute() -> None:
    points = _minutes([1.0, None, 3.0])
    times, values = bucketed(
        points, start=START, end=START + timedelta(minutes=3), aggregation="sum"
    )
    assert times == tuple(t for t, _ in points)
    assert values == (1.0, None, 3.0)


def test_a_day_is_cut_to_the_chart_width_by_the_series_aggregation() -> None:
    day = [float(i % 10) for i in range(1440)]
    day[600:660] = [None] * 60  # an hour without data stays a gap
    end = START + timedelta(days=1)
    times, mean = bucketed(_minutes(day), start=START, end=end, aggregation="sum")
    _, peak = bucketed(_minutes(day), start=START, end=end, aggregation="max")

    assert len(times) == MAX_POINTS and times[1] - times[0] == timedelta(minutes=6)
    assert mean[0] == pytest.approx(sum(range(6)) / 6)  # per minute, whatever the bucket
    assert peak[0] == 5.0
    assert mean[100:110] == (None,) * 10
    assert None not in mean[:100] and None not in mean[110:]


def test_points_outside_the_window_or_not_finite_are_ignored() -> None:
    points = [(START - timedelta(minutes=1), 5.0), (START, float("nan")), (START, 2.0)]
    _, values = bucketed(points, start=START, end=START + timedelta(minutes=2), aggregation="max")
    assert values == (2.0, None)
