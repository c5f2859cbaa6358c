"""Alarms when data is missing, over real stores (SQLite and PostgreSQL): how a rule counts a
window without data (insufficient by default; breaching, not-breaching, zero), "no traffic"
firing on the real metric series, and a window whose lease another process held (and died
with) still evaluated."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from modelyard.domain import Variant
from modelyard.domain.alarms import AlarmState
from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import SeriesRow
from modelyard.errors import InvalidInput
from modelyard.services.metrics import MetricsService
from modelyard.storage.sql.metric_store import SqlMetricStore
from tests.services.alarm_parts import FIVE, Series, create_rule
from tests.services.fixtures import parts_fixture
from tests.services.monitoring_parts import ENDPOINT, T0, Parts, open_parts
from tests.waiting import DEADLINE_S

parts = parts_fixture(open_parts)


def _no_traffic(parts: Parts, missing: str | None) -> AlarmState:
    """The state of ``requests < 1`` (one 5-minute window) after a window without rows, read
    from the real per-minute series store."""
    store = SqlMetricStore(parts.engine, prune_every_s=0)
    metrics = MetricsService(store, parts.endpoint_store, clock=parts.clock)
    extra = {} if missing is None else {"missing": missing}
    create_rule(parts, name="silent", metric="requests", comparison="<", threshold=1.0, **extra)
    alarms = parts.alarms(metrics.series)
    alarms.evaluate(T0 + FIVE)
    return alarms.state("silent").state


@pytest.mark.parametrize(
    ("missing", "state"),
    [
        (None, AlarmState.INSUFFICIENT_DATA),  # no data is never OK by default
        ("insufficient", AlarmState.INSUFFICIENT_DATA),
        ("zero", AlarmState.ALARM),  # no rows: no requests
        ("breaching", AlarmState.ALARM),
        ("not-breaching", AlarmState.OK),
    ],
)
def test_no_traffic_by_missing_data_policy(
    parts: Parts,
    missing: str | None,
    state: AlarmState,
) -> None:
    assert _no_traffic(parts, missing) is state


def test_zero_counts_only_the_windows_without_data(parts: Parts) -> None:
    series = Series()
    series.set("requests", T0, [3.0] * 5 + [None] * 5)  # traffic, then none
    create_rule(
        parts, name="quiet", metric="requests", comparison="<", threshold=1.0, missing="zero"
    )
    create_rule(
        parts,
        name="quiet-2-of-2",
        metric="requests",
        comparison="<",
        threshold=1.0,
        missing="zero",
        datapoints=2,
        windows=2,
    )
    alarms = parts.alarms(series)
    alarms.evaluate(T0 + FIVE)
    assert alarms.state("quiet").state is AlarmState.OK
    (event,) = alarms.evaluate(T0 + 2 * FIVE)
    assert (event.alarm, event.new) == ("quiet", AlarmState.ALARM)
    assert [(w.value, w.points, w.breaching) for w in event.windows] == [(0.0, 0, True)]
    assert "1 without data, counted as zero" in event.reason
    status = alarms.state("quiet-2-of-2")
    assert status.state is AlarmState.OK, "one window of 15 requests, one of zero"
    assert status.rule.condition.endswith(", missing data as zero")
    assert status.to_dict()["missing"] == "zero"


def test_missing_data_of_a_deleted_endpoint_stays_insufficient(parts: Parts) -> None:
    create_rule(
        parts, name="silent", metric="requests", comparison="<", threshold=1.0, missing="zero"
    )
    parts.endpoint_store.delete_endpoint(ENDPOINT)
    alarms = parts.alarms(Series())
    alarms.evaluate(T0 + FIVE)
    assert alarms.state("silent").state is AlarmState.INSUFFICIENT_DATA


def test_an_alarm_of_a_deleted_endpoint_leaves_its_state_for_insufficient_data(
    parts: Parts,
) -> None:
    """Read from the real series: once the endpoint is deleted (or recreated without the
    variant watched) and its rows age out of the windows, reading them raised
    EndpointNotFound (VariantNotFound), so the rules were never evaluated again and stayed in
    ALARM for good, for every deployment watching them to read."""
    store = SqlMetricStore(parts.engine, prune_every_s=0)
    stats = MetricStats(sums={"requests": 10.0, "errors": 5.0})
    store.write(
        [SeriesRow(ENDPOINT, "green", T0 + timedelta(minutes=m), 60, "w1", stats) for m in range(5)]
    )
    metrics = MetricsService(store, parts.endpoint_store, clock=parts.clock)
    create_rule(parts, name="errors", metric="error_rate", threshold=0.2)
    create_rule(parts, name="green-errors", metric="error_rate", threshold=0.2, variant="green")
    alarms = parts.alarms(metrics.series)
    alarms.evaluate(T0 + FIVE)
    assert [s.state for s in alarms.list_alarms()] == [AlarmState.ALARM] * 2

    parts.endpoint_store.delete_endpoint(ENDPOINT)
    events = alarms.evaluate(T0 + 2 * FIVE)
    assert sorted((e.alarm, e.new) for e in events) == [
        ("errors", AlarmState.INSUFFICIENT_DATA),
        ("green-errors", AlarmState.INSUFFICIENT_DATA),
    ]
    assert alarms.state("errors").reason == "no data for error_rate in the last 1 window(s)"
    # Made again without green: the endpoint's alarm reads it, green's has no data.
    parts.endpoint_store.create_endpoint(ENDPOINT, (Variant("blue", "churn", 1, 1.0),))
    store.write([SeriesRow(ENDPOINT, "blue", T0 + 2 * FIVE, 60, "w1", stats)])
    alarms.evaluate(T0 + 3 * FIVE)
    assert alarms.state("errors").state is AlarmState.ALARM
    status = alarms.state("green-errors")
    assert (status.state, status.evaluated_at) == (
        AlarmState.INSUFFICIENT_DATA, T0 + 3 * FIVE
    )  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "missing", "match"),
    [
        ("latency_p99_ms", "zero", "only for a count"),
        ("drift.share", "zero", "only for a count"),
        ("requests", "never", "invalid missing-data policy 'never'"),
    ],
)
def test_bad_missing_data_policies_are_refused(
    parts: Parts,
    metric: str,
    missing: str,
    match: str,
) -> None:
    with pytest.raises(InvalidInput, match=match):
        create_rule(parts, metric=metric, missing=missing)
    assert parts.alarm_store.list_rules() == []


def test_a_window_held_by_a_process_that_died_is_evaluated(parts: Parts) -> None:
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 5)
    create_rule(parts)
    # Another process takes the window's lease, then dies without finishing it.
    assert parts.leases.acquire("alarm:p99-high", T0 + FIVE, "dead", timedelta(seconds=2))
    alarms = parts.alarms(series)
    assert alarms.evaluate(T0 + FIVE) == [], "held by a live process: left to it"
    assert alarms.state("p99-high").state is AlarmState.INSUFFICIENT_DATA
    deadline = time.monotonic() + DEADLINE_S
    events = []
    while not events and time.monotonic() < deadline:  # asked again until the lease expires
        events = alarms.evaluate(T0 + FIVE)
        time.sleep(0.1)
    assert [(e.at, e.new) for e in events] == [(T0 + FIVE, AlarmState.ALARM)]
    lease = parts.leases.get("alarm:p99-high", T0 + FIVE)
    assert lease is not None and (lease.holder, lease.attempts) == ("one", 2)
    assert alarms.evaluate(T0 + FIVE) == [], "settled: evaluated once"
