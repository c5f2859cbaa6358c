"""Monitor schedules and the scheduler's pass over real stores (SQLite and PostgreSQL): ticks
run once across schedulers sharing a store (threads with their own connections, and
processes), only the latest due tick runs after a gap, a failing check is a failed run, and
bad schedules are refused without changing anything."""

from __future__ import annotations

import multiprocessing as mp
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from modelyard.domain.drift import DriftConfig
from modelyard.domain.monitors import RunStatus
from modelyard.errors import EndpointNotFound, InvalidInput, JobFailed, NotFound
from modelyard.services.ticks import latest_tick
from modelyard.storage.sql.tables import monitor_schedules
from tests.services.fixtures import parts_fixture
from tests.services.monitoring_parts import ENDPOINT, T0, Clock, Parts, Report, Runner, open_parts

TEN = timedelta(minutes=10)


parts = parts_fixture(open_parts)


def test_schedule_set_replace_list_unschedule(parts: Parts) -> None:
    monitors = parts.monitors(Runner())
    created, new = monitors.schedule(ENDPOINT, every=TEN, window=timedelta(hours=2))
    assert new and (created.every, created.cron, created.window) == (TEN, None, timedelta(hours=2))
    parts.clock.now = T0 + timedelta(minutes=3)
    replaced, new = monitors.schedule(ENDPOINT, cron="*/5 * * * *")
    assert not new
    assert (replaced.every, replaced.cron, replaced.window) == (
        None,
        "*/5 * * * *",
        timedelta(hours=1),
    )
    assert replaced.created_at == T0 and replaced.updated_at == T0 + timedelta(minutes=3)
    assert [s.name for s in monitors.schedules()] == [ENDPOINT]
    monitors.unschedule(ENDPOINT)
    assert monitors.schedules() == []
    with pytest.raises(NotFound, match=ENDPOINT):
        monitors.unschedule(ENDPOINT)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, InvalidInput, "either an interval or a cron"),
        ({"every": TEN, "cron": "* * * * *"}, InvalidInput, "either an interval or a cron"),
        ({"every": timedelta(seconds=5)}, InvalidInput, "at least 10"),
        ({"every": timedelta(seconds=30.5)}, InvalidInput, "whole number of seconds"),
        ({"cron": "*/5 * * *"}, InvalidInput, "five fields"),
        ({"cron": "61 * * * *"}, InvalidInput, "invalid cron expression '61"),
        ({"every": TEN, "window": timedelta(days=40)}, InvalidInput, "31 days"),
        # From Python: a wrong type is refused by name (these were TypeError and
        # AttributeError tracebacks).
        ({"every": 600}, InvalidInput, "the interval must be a timedelta or text .* got int 600"),
        ({"every": TEN, "window": 3600}, InvalidInput, "the window must be a timedelta or text"),
        ({"every": "soon"}, InvalidInput, "not a duration: 'soon'"),
        ({"every": "5s"}, InvalidInput, "at least 10"),
        ({"cron": 5}, InvalidInput, "the cron expression must be a str, got 5"),
        (
            {"every": TEN, "drift_config": {"alpha": 0.1}},
            InvalidInput,
            "the drift config must be a DriftConfig, got {'alpha': 0.1}",
        ),
    ],
)
def test_bad_schedules_are_refused(
    parts: Parts, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        parts.monitors(Runner()).schedule(ENDPOINT, **kwargs)  # type: ignore[arg-type]
    assert parts.monitor_store.list_schedules() == []


def test_durations_are_taken_as_text_too(parts: Parts) -> None:
    """As the CLI takes them: ``every="10m"`` is ten minutes (it was a TypeError)."""
    schedule, new = parts.monitors(Runner()).schedule(ENDPOINT, every="10m", window="30m")
    assert new and (schedule.every, schedule.window) == (TEN, timedelta(minutes=30))


def test_deleting_the_endpoint_removes_its_schedule_and_keeps_its_runs(parts: Parts) -> None:
    """The schedule once outlived its endpoint and recorded a failed run every tick, for good;
    its runs are history, still listed."""
    monitors = parts.monitors(Runner())
    monitors.schedule(ENDPOINT, every=TEN)
    (ran,) = monitors.run_due(T0 + TEN)
    parts.endpoint_store.delete_endpoint(ENDPOINT)
    assert monitors.schedules() == []
    assert monitors.run_due(T0 + 2 * TEN) == []
    assert [r.tick for r in monitors.runs(ENDPOINT)] == [ran.tick]


def test_an_unknown_endpoint_is_refused(parts: Parts) -> None:
    with pytest.raises(EndpointNotFound, match="nope"):
        parts.monitors(Runner()).schedule("nope", every=TEN)
    assert parts.monitor_store.list_schedules() == []


def test_only_the_latest_due_tick_runs_and_each_once(parts: Parts) -> None:
    runner = Runner()
    monitors = parts.monitors(runner)
    parts.clock.now = T0 + timedelta(minutes=3)
    monitors.schedule(ENDPOINT, every=TEN, window=timedelta(minutes=30))
    # Before the first tick after the schedule was set: nothing (10:00 precedes it).
    assert monitors.run_due(T0 + timedelta(minutes=9)) == []
    # Nothing ran for 35 minutes: 10:10 … 10:30 were missed; only 10:30 runs.
    runs = monitors.run_due(T0 + timedelta(minutes=35))
    assert [r.tick for r in runs] == [T0 + timedelta(minutes=30)]
    assert runner.calls == [(ENDPOINT, timedelta(minutes=30), T0 + timedelta(minutes=30))]
    assert monitors.run_due(T0 + timedelta(minutes=39)) == []
    later = monitors.run_due(T0 + timedelta(minutes=40, seconds=1))
    assert [r.tick for r in later] == [T0 + timedelta(minutes=40)]
    stored = monitors.runs(ENDPOINT)
    assert [(r.tick, r.status) for r in stored] == [
        (T0 + timedelta(minutes=40), RunStatus.SUCCEEDED),
        (T0 + timedelta(minutes=30), RunStatus.SUCCEEDED),
    ]
    assert stored[0].scores == {"blue": {"drift.share": 0.0}}
    assert stored[0].reports == ({"variant": "blue", "scores": {"drift.share": 0.0}},)
    # A second scheduler (another process) sees the tick done and does not run it again.
    assert parts.monitors(runner, holder="two").run_due(T0 + timedelta(minutes=41)) == []
    assert len(runner.calls) == 2


def test_a_failing_check_is_a_failed_run_and_others_go_on(parts: Parts) -> None:
    variants = parts.endpoint_store.get_endpoint(ENDPOINT).config.variants
    parts.endpoint_store.create_endpoint("fraud", variants)
    runner = Runner(
        fail=lambda now: JobFailed("no baseline for churn:1") if now.minute == 10 else None,
        reports=lambda now: [
            Report("blue", {"drift.share": float("nan"), "drift.feature.age": 0.25})
        ],
    )
    monitors = parts.monitors(runner)
    monitors.schedule(ENDPOINT, every=TEN)
    monitors.schedule("fraud", every=timedelta(minutes=5))
    runs = monitors.run_due(T0 + timedelta(minutes=10))
    by_name = {r.schedule: r for r in runs}
    assert by_name[ENDPOINT].status is RunStatus.FAILED
    assert by_name[ENDPOINT].error == "no baseline for churn:1"
    assert by_name["fraud"].status is RunStatus.FAILED  # same tick minute, same failure
    runs = monitors.run_due(T0 + timedelta(minutes=15))
    assert [(r.schedule, r.status) for r in runs] == [("fraud", RunStatus.SUCCEEDED)]
    # A NaN score is no score: stored JSON has no NaN (PostgreSQL's json refuses it).
    assert runs[0].scores == {"blue": {"drift.feature.age": 0.25}}
    assert runs[0].reports[0]["scores"]["drift.share"] is None


def test_a_bug_in_the_check_is_recorded_not_raised(parts: Parts) -> None:
    monitors = parts.monitors(Runner(fail=lambda now: ZeroDivisionError("division by zero")))
    monitors.schedule(ENDPOINT, every=TEN)
    (run,) = monitors.run_due(T0 + TEN)
    assert (run.status, run.error) == (RunStatus.FAILED, "ZeroDivisionError: division by zero")


def test_runs_of_an_unknown_name_is_not_found(parts: Parts) -> None:
    with pytest.raises(NotFound, match="ghost"):
        parts.monitors(Runner()).runs("ghost")


def test_runs_stay_listed_after_unschedule(parts: Parts) -> None:
    monitors = parts.monitors(Runner())
    monitors.schedule(ENDPOINT, every=TEN)
    monitors.run_due(T0 + TEN)
    monitors.unschedule(ENDPOINT)
    assert [r.tick for r in monitors.runs(ENDPOINT)] == [T0 + TEN]


def test_cron_ticks_in_utc() -> None:
    from modelyard.domain.monitors import MonitorSchedule
    from modelyard.services.ticks import next_tick

    hourly = MonitorSchedule("a", "a", None, "15 * * * *", TEN, T0, T0)
    assert latest_tick(hourly, T0 + timedelta(minutes=14)) is None  # 9:15 precedes the schedule
    assert latest_tick(hourly, T0 + timedelta(minutes=15)) == T0 + timedelta(minutes=15)
    assert latest_tick(hourly, T0 + timedelta(hours=2, minutes=5)) == T0 + timedelta(
        hours=1, minutes=15
    )
    assert next_tick(hourly, T0 + timedelta(minutes=15)) == T0 + timedelta(hours=1, minutes=15)


# -- two schedulers sharing one store ---------------------------------------------------------

NOWS = [T0 + timedelta(minutes=m, seconds=s) for m in range(0, 60, 5) for s in (0, 20, 40)]


def _expected_ticks() -> list[datetime]:
    return sorted({T0 + timedelta(minutes=10 * (n.minute // 10)) for n in NOWS} - {T0})


def _schedule_once(url: str) -> None:
    parts = open_parts(url, Clock(T0 + timedelta(seconds=1)), seed=False)
    parts.monitors(Runner()).schedule(ENDPOINT, every=TEN)
    parts.close()


def _scheduler_thread(url: str, holder: str, start: threading.Barrier, ran: list[datetime]) -> None:
    parts = open_parts(url, seed=False)  # its own engine: its own connections
    runner = Runner()
    try:
        monitors = parts.monitors(runner, holder=holder)
        for now in NOWS:
            start.wait(60)
            monitors.run_due(now)
    finally:
        parts.close()
    # What the drift check itself was called for: a tick run twice would show here even
    # though the store keeps one run record per tick.
    ran.extend(now for _, _, now in runner.calls)


def test_two_scheduler_threads_run_each_tick_once(db_url: str) -> None:
    open_parts(db_url).close()
    _schedule_once(db_url)
    start = threading.Barrier(2)
    ran: dict[str, list[datetime]] = {"a": [], "b": []}
    threads = [
        threading.Thread(target=_scheduler_thread, args=(db_url, h, start, ticks))
        for h, ticks in ran.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(ran["a"] + ran["b"]) == _expected_ticks(), ran
    parts = open_parts(db_url, seed=False)
    runs = parts.monitor_store.list_runs(ENDPOINT, limit=100)
    parts.close()
    assert sorted(r.tick for r in runs) == _expected_ticks()
    assert {r.holder for r in runs} <= {"a", "b"}


def _scheduler_process(url: str, holder: str, start: mp.synchronize.Barrier) -> list[str]:  # type: ignore[name-defined]
    parts = open_parts(url, seed=False)
    runner = Runner()
    try:
        monitors = parts.monitors(runner, holder=holder)
        for now in NOWS:
            start.wait(60)
            monitors.run_due(now)
    finally:
        parts.close()
    return [now.isoformat() for _, _, now in runner.calls]


def test_two_scheduler_processes_run_each_tick_once(db_url: str) -> None:
    open_parts(db_url).close()
    _schedule_once(db_url)
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            pending = [pool.apply_async(_scheduler_process, (db_url, h, start)) for h in "ab"]
            results = [p.get(timeout=120) for p in pending]
    assert sorted(t for r in results for t in r) == [t.isoformat() for t in _expected_ticks()]


def test_a_schedule_keeps_its_drift_thresholds_and_its_runs_use_them(parts: Parts) -> None:
    """Stored with the schedule (read back from the database, not from this object), handed
    to every run; a schedule set again without thresholds goes back to the defaults."""
    runner = Runner()
    monitors = parts.monitors(runner)
    strict = DriftConfig(min_rows=500, alpha=0.01, thresholds={"ks": 0.2}, drift_share=0.25)
    monitors.schedule(ENDPOINT, every=TEN, window=timedelta(minutes=30), drift_config=strict)
    stored = parts.monitors(Runner()).get(ENDPOINT)  # another service on the same store
    assert stored.drift_config == strict
    with parts.engine.connect() as conn:  # only what differs from the defaults is stored
        (row,) = conn.execute(sa.select(monitor_schedules.c.drift_config)).all()
    assert row.drift_config == {
        "min_rows": 500, "alpha": 0.01, "drift_share": 0.25, "thresholds": {"ks": 0.2}
    }  # fmt: skip
    assert stored.to_dict()["drift_config"]["thresholds"]["ks"] == 0.2
    monitors.run_due(T0 + timedelta(minutes=30))
    assert runner.configs == [strict]
    monitors.schedule(ENDPOINT, every=TEN, window=timedelta(minutes=30))
    assert monitors.get(ENDPOINT).drift_config is None
    with parts.engine.connect() as conn:  # SQL NULL, not JSON null
        nulls = monitor_schedules.c.drift_config.is_(None)
        assert conn.execute(sa.select(sa.func.count()).where(nulls)).scalar() == 1
    assert monitors.get(ENDPOINT).to_dict()["drift_config"] == DriftConfig().to_dict()
    monitors.run_due(T0 + timedelta(minutes=40))
    assert runner.configs == [strict, None]


def test_thresholds_this_version_cannot_read_stop_no_schedule(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored setting renamed or removed since (written here by hand) costs that schedule
    its thresholds, with an error in the log, and nothing else: it and the others still run."""
    runner = Runner()
    monitors = parts.monitors(runner)
    monitors.schedule(ENDPOINT, every=TEN, drift_config=DriftConfig(alpha=0.01))
    with parts.engine.begin() as conn:
        conn.execute(monitor_schedules.update().values(drift_config={"sensitivity": 3}))
    with caplog.at_level("ERROR", logger="modelyard.monitors"):
        (schedule,) = monitors.schedules()
    assert schedule.drift_config is None
    assert "unknown drift setting sensitivity" in caplog.text and ENDPOINT in caplog.text
    (run,) = monitors.run_due(T0 + timedelta(minutes=30))
    assert run.status is RunStatus.SUCCEEDED and runner.configs == [None]
