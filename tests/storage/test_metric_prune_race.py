"""Two processes pruning the metric series at once (every server worker prunes about hourly, and
the scheduler too) on PostgreSQL: old minutes end up in their hour exactly once.

The interleaving that would count them twice is forced, not hoped for: the second pruner is held
just after it read the old minutes, until the first one has finished, or is itself held
waiting for a lock the second one holds (then the two take turns, as they must).
SQLite runs one write transaction at a time, so this is PostgreSQL's test.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import SeriesRow
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.metric_store import HOUR, SqlMetricStore
from modelyard.storage.sql.store import SqlMetadataStore
from tests.waiting import DEADLINE_S, wait_for

NOW = datetime(2026, 12, 20, 12, 30, tzinfo=UTC)
OLD_HOUR = datetime(2026, 12, 20, 7, 0, tzinfo=UTC)  # past the 2 h minute retention
MINUTES = 10


def _store(url: str) -> SqlMetricStore:
    return SqlMetricStore(
        make_engine(url),
        minute_retention=timedelta(hours=2),
        hour_retention=timedelta(days=3),
        prune_every_s=0,
    )


def _reads_hours(statement: str, parameters: Any) -> bool:
    values = parameters.values() if isinstance(parameters, dict) else parameters or ()
    return statement.lstrip().upper().startswith("SELECT") and HOUR in list(values)


def test_two_pruners_at_once_merge_each_minute_once(pg_url: str) -> None:
    setup = make_engine(pg_url)
    SqlMetadataStore(setup)  # creates the schema
    first, second = _store(pg_url), _store(pg_url)
    first.write(
        [
            SeriesRow(
                "churn",
                "main",
                OLD_HOUR + timedelta(minutes=i),
                60,
                "web-1:100:1",
                MetricStats({"requests": 1.0}, {}, {}),
            )
            for i in range(MINUTES)
        ]
    )
    second_read_minutes = threading.Event()
    first_done = threading.Event()

    def first_is_done_or_waiting() -> bool:
        if first_done.is_set():
            return True
        with setup.connect() as conn:  # is the first pruner held on a lock of the second's?
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalar_one()
        return bool(waiting)

    def hold(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        # The second pruner has read the old minutes and now reads the hours it merges into.
        if _reads_hours(statement, parameters) and not second_read_minutes.is_set():
            second_read_minutes.set()
            wait_for("the first pruner done, or waiting on a lock", first_is_done_or_waiting)

    sa.event.listen(second._engine, "before_cursor_execute", hold)
    errors: list[BaseException] = []

    def run_first() -> None:
        try:
            assert second_read_minutes.wait(DEADLINE_S)
            first.prune(NOW)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            first_done.set()

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        second.prune(NOW)
    finally:
        thread.join(DEADLINE_S)
    assert not errors, errors
    rows = first.read("churn", variant=None, since=OLD_HOUR, until=OLD_HOUR + timedelta(hours=1))
    assert [(r.resolution_s, r.stats.sums) for r in rows] == [(HOUR, {"requests": MINUTES})]
    for engine in (setup, first._engine, second._engine):
        engine.dispose()
