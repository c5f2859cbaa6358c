"""The metric series catalog and its accumulators: names are checked, stats merge exactly in any
order, and every series value is computed from merged sums (never averaged averages)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from modelyard.domain.metric_stats import LATENCY_BOUNDS_S, MetricStats
from modelyard.domain.metrics import METRICS, series_value, split_name
from modelyard.errors import InvalidInput


def stats(**sums: float) -> MetricStats:
    return MetricStats(sums={k.replace("__", "."): v for k, v in sums.items()})


def test_names_with_and_without_qualifiers() -> None:
    assert split_name("requests") == ("requests", None)
    assert split_name("input_mean.age.years") == ("input_mean", "age.years")
    assert split_name("input_missing_fraction") == ("input_missing_fraction", None)
    assert split_name("class_share.churned") == ("class_share", "churned")


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("request", "unknown metric 'request'"),
        ("requests.main", "requests takes no qualifier"),
        ("input_mean", "needs a feature: input_mean.<feature>"),
        ("input_mean.", "input_mean takes a feature after the dot"),
        ("class_share", "needs a class"),
    ],
)
def test_bad_names_are_refused_with_the_reason(name: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says.replace(".", r"\.").replace("(", r"\(")):
        split_name(name)


def test_every_catalog_entry_has_a_value_on_empty_stats() -> None:
    for name, info in METRICS.items():
        full = f"{name}.x" if info.qualifier_required else name
        value = series_value(MetricStats(), full)
        assert value is None or value == 0.0, (name, value)


def test_merge_is_exact_and_order_free() -> None:
    parts = [
        MetricStats({"requests": 3, "latency_s": 0.3}, {"in.a": 1.0}, {"in.a": 5.0}),
        MetricStats({"requests": 2, "errors": 1}, {"in.a": -2.0}, {"in.a": 4.0}),
        MetricStats({"requests": 5, "latency_s": 0.7}, {}, {"in.a": 9.5, "inflight": 3}),
    ]
    results = [MetricStats.merged(order).to_dict() for order in itertools.permutations(parts)]
    assert all(r == results[0] for r in results)
    assert results[0] == {
        "sums": {"requests": 10.0, "latency_s": 1.0, "errors": 1.0},
        "lows": {"in.a": -2.0},
        "highs": {"in.a": 9.5, "inflight": 3.0},
    }
    assert MetricStats.from_dict(results[0]).to_dict() == results[0]


def test_ratios_come_from_merged_sums_not_averaged_means() -> None:
    # A minute with 1 request at 100 ms and one with 99 requests at 1 ms: the mean is ~2 ms,
    # not the 50.5 ms an average of the two means would say.
    slow = stats(requests=1, latency_s=0.1, errors=1)
    fast = stats(requests=99, latency_s=0.099)
    merged = MetricStats.merged([slow, fast])
    assert series_value(merged, "latency_mean_ms") == pytest.approx(1.99)
    assert series_value(merged, "error_rate") == pytest.approx(0.01)
    assert series_value(merged, "requests") == 100


def test_input_and_output_values() -> None:
    s = MetricStats(
        sums={
            "in.n.age": 8,
            "in.miss.age": 2,
            "in.sum.age": 400,
            "in.n.city": 5,
            "in.miss.city": 5,
            "txt.n.city": 5,
            "txt.len.city": 35,
            "out.n": 9,
            "out.miss": 1,
            "out.sum": 4.5,
            "class.yes": 3,
            "class.no": 1,
            "repeated": 2,
            "io_requests": 8,
            "rows": 10,
        },
        lows={"in.age": 18, "out": 0.1},
        highs={"in.age": 90, "out": 0.9},
    )
    assert series_value(s, "input_missing_fraction.age") == pytest.approx(0.2)
    assert series_value(s, "input_missing_fraction") == pytest.approx(7 / 20)
    assert series_value(s, "input_mean.age") == 50
    assert (series_value(s, "input_min.age"), series_value(s, "input_max.age")) == (18, 90)
    assert series_value(s, "input_text_length_mean.city") == 7
    assert series_value(s, "input_mean.unknown") is None
    assert series_value(s, "output_missing_fraction") == pytest.approx(0.1)
    assert series_value(s, "prediction_mean") == 0.5
    assert series_value(s, "class_share.yes") == 0.75
    assert series_value(s, "class_share.maybe") == 0.0
    assert series_value(s, "repeated_fraction") == 0.25
    assert series_value(s, "rows_per_request") == 1.25


def test_latency_quantiles_match_numpy_within_a_bucket() -> None:
    rng = np.random.default_rng(3)
    latencies = rng.lognormal(mean=-6, sigma=1.0, size=5000)  # ~2.5 ms median
    index = np.searchsorted(LATENCY_BOUNDS_S, latencies, side="left")
    counts = np.bincount(index, minlength=len(LATENCY_BOUNDS_S) + 1)
    s = MetricStats({f"lat.{i}": float(c) for i, c in enumerate(counts) if c})
    s.add("requests", len(latencies))
    for q, name in ((0.5, "latency_p50_ms"), (0.9, "latency_p90_ms"), (0.99, "latency_p99_ms")):
        exact = float(np.quantile(latencies, q))
        bucket = int(np.searchsorted(LATENCY_BOUNDS_S, exact))
        lower = LATENCY_BOUNDS_S[bucket - 1] if bucket else 0.0
        value = series_value(s, name)
        assert value is not None
        assert lower * 1000 <= value <= LATENCY_BOUNDS_S[bucket] * 1000, (name, exact, value)


def test_non_finite_values_are_not_stored() -> None:
    s = MetricStats({"in.sum.a": math.inf, "requests": 1}, {"in.a": -math.inf}, {"in.a": 2.0})
    assert s.to_dict() == {"sums": {"requests": 1.0}, "lows": {}, "highs": {"in.a": 2.0}}


LARGEST = 1.7976931348623157e308


def test_sums_past_the_largest_float_carry_and_their_means_stay_exact() -> None:
    worker = MetricStats()
    for value in (LARGEST, LARGEST, -LARGEST / 2, LARGEST):
        worker.add("in.sum.a", value)
        worker.add("in.n.a", 1)
        worker.add("out.sum", value)
        worker.add("out.n", 1)
    # As stored and read back (JSON holds no infinity), then merged with a second worker's.
    stored = MetricStats.from_dict(worker.to_dict())
    other = stats(in__sum__a=LARGEST, in__n__a=1, out__sum=LARGEST, out__n=1)
    for merged in (
        stored,
        MetricStats.merged([stored, other]),
        MetricStats.merged([other, stored]),
    ):
        count = merged.sums["in.n.a"]
        want = (2.5 + (count == 5)) / count * LARGEST
        assert series_value(merged, "input_mean.a") == pytest.approx(want)
        assert series_value(merged, "prediction_mean") == pytest.approx(want)
    assert stored.total("in.sum.a") == math.inf  # the sum itself is past any float


def test_a_mean_no_float_holds_is_no_value() -> None:
    s = stats(in__sum__a=math.inf, in__n__a=2, out__sum=math.nan, out__n=2)
    assert series_value(s, "input_mean.a") is None
    assert series_value(s, "prediction_mean") is None


def test_a_minute_of_labels_has_no_prediction_mean() -> None:
    # A classifier's labels are counted (out.n) but never summed: 0 would be a made-up mean.
    assert series_value(stats(out__n=5, class__yes=5), "prediction_mean") is None
