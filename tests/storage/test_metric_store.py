"""The MetricSeriesStore contract on every backend: a worker's row of a minute is replaced, never
added to; reads return every worker's rows of a window; prune merges old minutes of all
workers into hourly rows with exactly the same sums (also into an hour already pruned), deletes
hours past their retention, and is idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import SeriesRow
from modelyard.errors import StorageUnavailable
from modelyard.storage.metric_series import Pruned
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.metric_store import SqlMetricStore
from modelyard.storage.sql.store import SqlMetadataStore
from modelyard.storage.sql.tables import metric_series
from tests.conftest import module_database

NOW = datetime(2026, 12, 20, 12, 30, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_store(request: pytest.FixtureRequest) -> Iterator[SqlMetricStore]:
    with module_database(request) as url:
        engine = make_engine(url)
        SqlMetadataStore(engine)  # creates the schema
        yield SqlMetricStore(
            engine,
            minute_retention=timedelta(hours=2),
            hour_retention=timedelta(days=3),
            prune_every_s=0,
        )
        engine.dispose()


@pytest.fixture
def store(module_store: SqlMetricStore) -> SqlMetricStore:
    with module_store._engine.begin() as conn:
        conn.execute(metric_series.delete())
    return module_store


def row(
    minute: datetime,
    worker: str = "web-1:100:1",
    variant: str = "main",
    endpoint: str = "churn",
    **sums: float,
) -> SeriesRow:
    lows = {"in.age": sums.pop("low")} if "low" in sums else {}
    return SeriesRow(endpoint, variant, minute, 60, worker, MetricStats(dict(sums), lows, {}))


def test_a_worker_rewrites_its_minute_and_workers_keep_their_own(store: SqlMetricStore) -> None:
    minute = NOW.replace(second=0, microsecond=0)
    store.write([row(minute, requests=3), row(minute, worker="web-1:101:1", requests=5)])
    store.write([row(minute, requests=7, errors=1)])  # the first worker's minute, fuller
    rows = store.read("churn", variant=None, since=minute, until=minute + timedelta(minutes=1))
    by_worker = {r.worker: r.stats.sums for r in rows}
    assert by_worker == {
        "web-1:100:1": {"requests": 7.0, "errors": 1.0},
        "web-1:101:1": {"requests": 5.0},
    }
    assert {r.start for r in rows} == {minute}


def test_reads_filter_by_endpoint_variant_and_window(store: SqlMetricStore) -> None:
    base = datetime(2026, 12, 20, 10, 0, tzinfo=UTC)
    store.write(
        [
            row(base + timedelta(minutes=i), variant=v, requests=i)
            for i in range(10)
            for v in ("main", "canary")
        ]
        + [row(base, endpoint="other", requests=99)]
    )
    window = store.read(
        "churn",
        variant="canary",
        since=base + timedelta(minutes=2),
        until=base + timedelta(minutes=5),
    )
    assert [(r.start.minute, r.variant, r.stats.sums["requests"]) for r in window] == [
        (2, "canary", 2.0),
        (3, "canary", 3.0),
        (4, "canary", 4.0),
    ]
    everything = store.read("churn", variant=None, since=base, until=base + timedelta(hours=1))
    assert len(everything) == 20
    assert all(r.start.tzinfo is not None for r in everything)


def test_prune_merges_old_minutes_of_all_workers_into_hours(store: SqlMetricStore) -> None:
    old_hour = datetime(2026, 12, 20, 8, 0, tzinfo=UTC)  # older than NOW - 2 h, hour-aligned
    recent = datetime(2026, 12, 20, 11, 0, tzinfo=UTC)
    rows = [
        row(old_hour + timedelta(minutes=m), worker=w, requests=m + 1, low=float(m))
        for m in range(60)
        for w in ("a:1:1", "b:2:1")
    ]
    rows += [row(recent, requests=4)]
    store.write(rows)
    done = store.prune(NOW)
    assert done == Pruned(minutes_merged=120, hours_written=1, hours_deleted=0)
    kept = store.read("churn", variant=None, since=old_hour, until=NOW)
    hourly = [r for r in kept if r.resolution_s == 3600]
    assert len(hourly) == 1
    assert hourly[0].start == old_hour and hourly[0].worker == ""
    assert hourly[0].stats.sums == {"requests": 2 * sum(range(1, 61))}
    assert hourly[0].stats.lows == {"in.age": 0.0}
    assert [r.stats.sums for r in kept if r.resolution_s == 60] == [{"requests": 4.0}]
    assert store.prune(NOW) == Pruned(0, 0, 0)  # nothing left to do


def test_late_minutes_merge_into_an_hour_already_pruned(store: SqlMetricStore) -> None:
    hour = datetime(2026, 12, 20, 7, 0, tzinfo=UTC)
    store.write([row(hour + timedelta(minutes=5), requests=10)])
    store.prune(NOW)
    store.write([row(hour + timedelta(minutes=6), worker="late:9:1", requests=3)])
    assert store.prune(NOW) == Pruned(1, 1, 0)
    (hourly,) = store.read("churn", variant="main", since=hour, until=hour + timedelta(hours=1))
    assert (hourly.resolution_s, hourly.stats.sums) == (3600, {"requests": 13.0})


def test_hours_past_their_retention_are_deleted(store: SqlMetricStore) -> None:
    ancient = NOW - timedelta(days=5)
    store.write([row(ancient, requests=1), row(NOW - timedelta(days=1), requests=2)])
    done = store.prune(NOW)
    assert (done.minutes_merged, done.hours_written, done.hours_deleted) == (2, 2, 1)
    rows = store.read("churn", variant=None, since=NOW - timedelta(days=10), until=NOW)
    assert [r.stats.sums["requests"] for r in rows] == [2.0]


def test_an_unreachable_store_raises_a_modelyard_error(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/missing/dir/x.db")
    broken = SqlMetricStore(engine, prune_every_s=0)
    with pytest.raises(StorageUnavailable):
        broken.write([row(NOW, requests=1)])
    engine.dispose()


def test_the_table_holds_one_row_per_key(store: SqlMetricStore) -> None:
    minute = NOW.replace(second=0, microsecond=0)
    for n in range(5):
        store.write([row(minute, requests=n)])
    with store._engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(metric_series)).scalar()
    assert count == 1
