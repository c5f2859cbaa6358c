"""MetricsService.series: one point per minute (None where nothing was served), workers and
variants merged before a value is computed, an hour per point where only hourly rows remain,
and typed errors for unknown series, endpoints and windows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import ConfigChange, Source, Trust, Variant
from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import MetricPoint, SeriesRow
from modelyard.errors import EndpointNotFound, InvalidInput, VariantNotFound
from modelyard.services.metrics import MetricsService
from modelyard.storage.base import NewVersion
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.metric_store import SqlMetricStore

NOW = datetime(2026, 12, 20, 12, 30, 20, tzinfo=UTC)
BASE = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home"))
    yield p
    p.close()


@pytest.fixture
def parts(platform: Platform) -> Iterator[tuple[SqlMetricStore, MetricsService]]:
    engine = make_engine(platform.settings.resolved_db_url)
    store = SqlMetricStore(engine, minute_retention=timedelta(hours=2), prune_every_s=0)
    yield store, MetricsService(store, platform.endpoint_store, clock=lambda: NOW)
    engine.dispose()


def minute_row(offset: int, worker: str, variant: str = "main", **sums: float) -> SeriesRow:
    start = BASE + timedelta(minutes=offset)
    return SeriesRow("churn", variant, start, 60, worker, MetricStats(dict(sums)))


def test_points_per_minute_with_gaps_and_workers_merged(
    parts: tuple[SqlMetricStore, MetricsService],
) -> None:
    store, service = parts
    store.write(
        [
            minute_row(1, "a", requests=4, latency_s=0.4),
            minute_row(1, "b", requests=6, latency_s=0.06),
            minute_row(3, "a", requests=2, latency_s=0.02),
        ]
    )
    points = service.series("churn", "requests", since=BASE, until=BASE + timedelta(minutes=5))
    assert points == [
        MetricPoint(BASE, None),
        MetricPoint(BASE + timedelta(minutes=1), 10.0),
        MetricPoint(BASE + timedelta(minutes=2), None),
        MetricPoint(BASE + timedelta(minutes=3), 2.0),
        MetricPoint(BASE + timedelta(minutes=4), None),
    ]
    latency = service.series(
        "churn", "latency_mean_ms", since=BASE + timedelta(minutes=1, seconds=30)
    )
    assert latency[0] == MetricPoint(BASE + timedelta(minutes=1), pytest.approx(46.0))
    assert len(latency) == 30  # up to the clock's 12:30:20, the minute holding it included


def test_variants_are_merged_unless_one_is_asked_for(
    parts: tuple[SqlMetricStore, MetricsService],
) -> None:
    store, service = parts
    store.write(
        [
            minute_row(0, "a", "main", requests=9, errors=0),
            minute_row(0, "a", "canary", requests=1, errors=1),
        ]
    )
    until = BASE + timedelta(minutes=1)
    assert service.series("churn", "error_rate", since=BASE, until=until)[0].value == 0.1
    canary = service.series("churn", "error_rate", variant="canary", since=BASE, until=until)
    assert canary[0].value == 1.0
    table = service.table("churn", ["requests", "errors"], since=BASE, until=until)
    assert {k: [p.value for p in v] for k, v in table.items()} == {
        "requests": [10.0],
        "errors": [1.0],
    }


def test_hours_that_were_pruned_are_one_point_each(
    parts: tuple[SqlMetricStore, MetricsService],
) -> None:
    store, service = parts
    early = datetime(2026, 12, 20, 8, 0, tzinfo=UTC)
    store.write(
        [
            SeriesRow(
                "churn", "main", early + timedelta(minutes=m), 60, "a", MetricStats({"requests": 1})
            )
            for m in range(0, 60, 10)
        ]
    )
    assert service.prune().minutes_merged == 6
    points = service.series(
        "churn", "requests", since=early, until=early + timedelta(hours=1, minutes=2)
    )
    assert points == [
        MetricPoint(early, 6.0),
        MetricPoint(early + timedelta(hours=1), None),
        MetricPoint(early + timedelta(hours=1, minutes=1), None),
    ]


def test_a_window_up_to_the_last_minute_of_the_calendar_is_read(
    parts: tuple[SqlMetricStore, MetricsService],
) -> None:
    # 'monitor metrics --since 9999-12-31T23:00 --until 9999-12-31T23:59:59' ended in an
    # OverflowError traceback: the minute after the last one is past datetime.max.
    store, service = parts
    last_hour = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    store.write(
        [SeriesRow("churn", "main", last_hour + timedelta(minutes=59), 60, "a",
                   MetricStats({"requests": 3}))]
    )  # fmt: skip
    until = datetime.max.replace(tzinfo=UTC)
    points = service.series("churn", "requests", since=last_hour, until=until)
    assert len(points) == 60 and points[-1] == MetricPoint(last_hour + timedelta(minutes=59), 3)
    hourly = SeriesRow("churn", "main", last_hour, 3600, "b", MetricStats({"requests": 4}))
    store.write([hourly])  # an hour that only has an hourly row: one point
    points = service.series("churn", "requests", since=last_hour, until=until)
    assert points == [MetricPoint(last_hour, 7.0)]


def test_errors_name_the_problem(
    parts: tuple[SqlMetricStore, MetricsService], platform: Platform
) -> None:
    service = parts[1]
    # A month at most: a point per minute, and a year's would not fit in memory.
    with pytest.raises(InvalidInput, match="longer than 31 days; read a month at most"):
        service.series("churn", "requests", since=NOW - timedelta(days=31, minutes=1))
    with pytest.raises(InvalidInput, match="longer than 31 days"):
        service.series("churn", "requests", since=NOW, until=NOW + timedelta(days=40))
    with pytest.raises(InvalidInput, match="unknown metric 'latency'"):
        service.series("churn", "latency", since=BASE)
    with pytest.raises(InvalidInput, match="must be before"):
        service.series("churn", "requests", since=BASE, until=BASE)
    # A time without a zone is UTC, and text is read, as the CLI reads them: both get past
    # the window's checks to the endpoint's (a naive time was refused; text failed on .tzinfo).
    for since in (BASE.replace(tzinfo=None), "2h"):
        with pytest.raises(EndpointNotFound, match="'churn' does not exist"):
            service.series("churn", "requests", since=since)
    with pytest.raises(InvalidInput, match="since must be a datetime or text"):
        service.series("churn", "requests", since=1.5)  # type: ignore[arg-type]
    with pytest.raises(EndpointNotFound, match="'nope' does not exist and has no metrics"):
        service.series("nope", "requests", since=BASE)
    # A variant no config ever had is refused; one that had no traffic reads as empty.
    platform.metadata.create_version(
        NewVersion(
            name="m", flavor="xgboost", model_format="ubj", artifact_digest="ab" * 32,
            size_bytes=1, source=Source("upload"), trust=Trust(),
        )
    )  # fmt: skip
    store = platform.endpoint_store
    store.create_endpoint("api", (Variant("blue", "m", 1, 1.0),))
    store.add_config(
        "api", (Variant("green", "m", 1, 1.0),), ConfigChange.UPDATE, expected_current=1, parent=1
    )
    with pytest.raises(
        VariantNotFound, match="never had a variant 'red'; its variants: blue, green"
    ):
        service.series("api", "requests", variant="red", since=BASE)
    assert service.series("api", "requests", variant="blue", since=NOW - timedelta(minutes=2)) == [
        MetricPoint(NOW.replace(second=0) - timedelta(minutes=m), None) for m in (2, 1, 0)
    ]
    # 31 days from a minute's 20th second: 44,640 whole minutes and the one holding now.
    assert len(service.series("api", "requests", since=NOW - timedelta(days=31))) == 44_641
    assert "requests" in service.names() and "class_share" in service.names()


def test_a_feature_no_model_of_the_endpoint_took_is_refused(platform: Platform) -> None:
    """``input_mean.nope`` gave a point per minute, all null, where alarms refuse it: the
    same rule refuses it here, naming the features, while a retired model's feature stays
    readable (its minutes are history)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    for features in (["age", "tenure"], ["age", "income"]):
        frame = pd.DataFrame([[30.0, 1.0], [50.0, 7.0], [40.0, 3.0]], columns=features)
        model = LogisticRegression().fit(frame, [0, 1, 0])
        platform.registry.register("churn", model, flavor="sklearn", input_example=frame)
    platform.endpoints.create("api", {"main": "churn:1"})
    platform.endpoints.update("api", {"main": "churn:2"})
    since = datetime.now(UTC) - timedelta(minutes=5)

    with pytest.raises(InvalidInput) as refused:
        platform.metrics.table("api", ["requests", "input_mean.nope"], since=since)
    assert str(refused.value) == (
        "metric 'input_mean.nope': endpoint 'api' has no input feature 'nope' "
        "(its features: age, tenure, income)"
    )
    with pytest.raises(InvalidInput) as by_alarm:
        platform.alarms.create(
            "nope", endpoint="api", metric="input_mean.nope", comparison=">", threshold=1
        )
    assert str(by_alarm.value).startswith(
        "metric 'input_mean.nope': endpoint 'api' has no input feature 'nope' (its features: "
    )
    for name in ("input_mean.tenure", "input_mean.income"):
        points = platform.metrics.series("api", name, since=since)
        assert points and all(p.value is None for p in points)  # nothing was served
