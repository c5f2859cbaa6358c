"""The ScheduleStore contract on every backend: names are unique (even created concurrently),
pause and resume change only what is not so already, runs are one per tick, deleting a schedule
takes its runs, and pruning keeps each schedule's newest run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelyard.domain.batch import BatchFormat, JoinSource, TransformRequest
from modelyard.domain.schedules import MissedPolicy, Schedule, ScheduleRun, ScheduleRunStatus
from modelyard.errors import AlreadyExists, NotFound
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.schedule_store import SqlScheduleStore
from modelyard.storage.sql.store import SqlMetadataStore

T0 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
REQUEST = TransformRequest(
    "churn@prod",
    "s3://in/scores/*.csv",
    "s3://out/{tick:%Y-%m-%d}/",
    content_type=BatchFormat.CSV,
    join_source=JoinSource.INPUT,
    max_errors=3,
)


def schedule(name: str = "weekly", **changes: object) -> Schedule:
    values: dict[str, object] = {
        "name": name,
        "cron": "0 6 * * 1",
        "timezone": "Europe/Paris",
        "missed": MissedPolicy.SKIP,
        "request": REQUEST,
        "paused": False,
        "created_at": T0,
        "updated_at": T0,
        "active_since": T0,
    }
    values.update(changes)
    return Schedule(**values)  # type: ignore[arg-type]


def run(tick: datetime, name: str = "weekly", **changes: object) -> ScheduleRun:
    values: dict[str, object] = {
        "schedule": name,
        "tick": tick,
        "status": ScheduleRunStatus.SUBMITTED,
        "at": tick + timedelta(seconds=1),
        "holder": "host:1",
        "job": f"batch-{tick:%Y%m%d}",
    }
    values.update(changes)
    return ScheduleRun(**values)  # type: ignore[arg-type]


@pytest.fixture
def url(db_url: str) -> Iterator[str]:
    engine = make_engine(db_url)
    SqlMetadataStore(engine)  # creates the schema
    engine.dispose()
    yield db_url


@pytest.fixture
def store(url: str) -> Iterator[SqlScheduleStore]:
    engine = make_engine(url)
    yield SqlScheduleStore(engine)
    engine.dispose()


def test_a_schedule_round_trips(store: SqlScheduleStore) -> None:
    created = store.create(schedule())
    assert created == schedule()
    assert store.get("weekly").request == REQUEST
    store.create(schedule("daily", cron="0 7 * * *", missed=MissedPolicy.RUN_ONCE))
    assert [s.name for s in store.list_schedules()] == ["daily", "weekly"]


def test_a_taken_name_is_refused_and_the_first_kept(store: SqlScheduleStore) -> None:
    store.create(schedule())
    with pytest.raises(AlreadyExists, match="a schedule named 'weekly' already exists"):
        store.create(schedule(cron="* * * * *"))
    assert store.get("weekly").cron == "0 6 * * 1"


def test_concurrent_creates_of_one_name_store_one(url: str) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(3)

    def create(cron: str) -> None:
        engine = make_engine(url)
        try:
            start.wait(30)
            SqlScheduleStore(engine).create(schedule(cron=cron))
            outcomes.append(cron)
        except AlreadyExists:
            outcomes.append("refused")
        finally:
            engine.dispose()

    crons = ["1 6 * * 1", "2 6 * * 1", "3 6 * * 1"]
    threads = [threading.Thread(target=create, args=(c,)) for c in crons]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes).count("refused") == 2, outcomes
    engine = make_engine(url)
    try:
        kept = SqlScheduleStore(engine).list_schedules()
    finally:
        engine.dispose()
    assert [s.cron for s in kept] == [c for c in outcomes if c != "refused"]


def test_pause_and_resume(store: SqlScheduleStore) -> None:
    store.create(schedule())
    later, latest = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    paused, changed = store.set_paused("weekly", True, later)
    assert changed and paused.paused and paused.updated_at == later
    assert paused.active_since == T0, "pausing does not move active_since"
    again, changed = store.set_paused("weekly", True, latest)
    assert not changed and again.updated_at == later
    resumed, changed = store.set_paused("weekly", False, latest)
    assert changed and not resumed.paused and resumed.active_since == latest
    assert store.set_paused("weekly", False, latest + timedelta(hours=1))[1] is False
    with pytest.raises(NotFound, match="no schedule named 'nope'"):
        store.set_paused("nope", True, later)


def test_runs_one_per_tick_newest_first(store: SqlScheduleStore) -> None:
    store.create(schedule())
    first, second = T0, T0 + timedelta(days=7)
    store.add_run(run(first))
    failed = run(
        second, status=ScheduleRunStatus.FAILED, job=None, error="no input", late=True, missed=2
    )
    assert store.add_run(failed) == failed
    with pytest.raises(AlreadyExists, match="at 2026-12-07T05:00:00"):
        store.add_run(run(first, holder="host:2"))
    assert store.list_runs("weekly") == [failed, run(first)]
    assert store.list_runs("weekly", limit=1) == [failed]
    assert store.list_runs("other") == []
    # A tick given in another zone is the same instant.
    from zoneinfo import ZoneInfo

    with pytest.raises(AlreadyExists):
        store.add_run(run(first.astimezone(ZoneInfo("Asia/Tokyo"))))


def test_a_run_of_a_deleted_schedule_is_refused(store: SqlScheduleStore) -> None:
    with pytest.raises(NotFound, match="no schedule named 'weekly'"):
        store.add_run(run(T0))
    assert store.list_runs("weekly") == []


def test_delete_takes_the_runs_with_it(store: SqlScheduleStore) -> None:
    store.create(schedule())
    store.create(schedule("other"))
    store.add_run(run(T0))
    store.add_run(run(T0, name="other"))
    store.delete("weekly")
    with pytest.raises(NotFound):
        store.get("weekly")
    with pytest.raises(NotFound, match="no schedule named 'weekly'"):
        store.delete("weekly")
    assert store.list_runs("weekly") == []
    assert len(store.list_runs("other")) == 1
    # The name is free again, with an empty history.
    store.create(schedule())
    assert store.list_runs("weekly") == []


def test_prune_keeps_each_schedules_newest_run(store: SqlScheduleStore) -> None:
    store.create(schedule())
    store.create(schedule("other"))
    weekly = [T0 + timedelta(days=7 * i) for i in range(4)]
    for tick in weekly:
        store.add_run(run(tick))
    store.add_run(run(T0, name="other"))
    assert store.prune_runs(weekly[2] + timedelta(days=100)) == 3
    assert [r.tick for r in store.list_runs("weekly")] == [weekly[3]]
    assert [r.tick for r in store.list_runs("other")] == [T0]
