"""Batch schedules in the scheduler loop (services/scheduler.py), beside the monitors and alarms:
a pass runs the due batch ticks too, the loop wakes for a batch tick, and housekeeping prunes
old schedule runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelyard.domain.batch import TransformRequest
from modelyard.domain.schedules import ScheduleRunStatus
from modelyard.services import scheduler as scheduler_module
from modelyard.services.scheduler import Pass, Scheduler
from tests.services import monitoring_parts
from tests.services.schedule_parts import T0, Parts, open_parts
from tests.waiting import wait_for


@pytest.fixture
def parts(db_url: str) -> Iterator[tuple[Parts, monitoring_parts.Parts]]:
    batch = open_parts(db_url)
    monitoring = monitoring_parts.open_parts(db_url, monitoring_parts.Clock(T0), seed=False)
    yield batch, monitoring
    monitoring.close()
    batch.close()


@pytest.fixture
def request_(tmp_path: Path) -> TransformRequest:
    data = tmp_path / "in.csv"
    data.write_text("1,2\n")
    return TransformRequest("churn", str(data), str(tmp_path / "{tick}"))


def test_a_pass_runs_due_batch_ticks_and_prunes_old_runs(
    parts: tuple[Parts, monitoring_parts.Parts], request_: TransformRequest
) -> None:
    batch, monitoring = parts
    schedules, _ = batch.service(run_retention=timedelta(days=30))
    schedules.create("hourly", cron="0 * * * *", request=request_)
    scheduler = Scheduler(
        monitoring.monitors(monitoring_parts.Runner()),
        monitoring.alarms(),
        schedules=schedules,
        clock=batch.clock,
    )
    first = scheduler.run_once(T0 + timedelta(hours=1))
    assert [r.tick for r in first.scheduled] == [T0 + timedelta(hours=1)]
    assert (first.runs, first.events) == ([], [])
    assert scheduler.run_once(T0 + timedelta(hours=1, minutes=1)).scheduled == []
    # Housekeeping runs hourly; 40 days on, runs older than 30 days go (the newest stays).
    scheduler.run_once(T0 + timedelta(hours=2))
    later = T0 + timedelta(days=40)
    [late] = scheduler.run_once(later + timedelta(minutes=30)).scheduled
    assert (late.tick, late.late, late.missed) == (later, True, 40 * 24 - 3)
    assert [r.tick for r in schedules.runs("hourly")] == [later]
    assert len(batch.batch_jobs()) == 3


def test_the_loop_wakes_for_a_batch_tick(
    parts: tuple[Parts, monitoring_parts.Parts], request_: TransformRequest
) -> None:
    batch, monitoring = parts
    # The real clock, shifted so that the 06:00 tick comes two seconds after the start.
    shift = T0 + timedelta(hours=1, seconds=-2) - datetime.now(UTC)

    def clock() -> datetime:
        return datetime.now(UTC) + shift

    schedules, _ = batch.service(clock=clock)
    schedules.create("hourly", cron="0 * * * *", request=request_)
    # A poll far longer than the test waits: the loop must wake for the tick by itself.
    scheduler = Scheduler(
        monitoring.monitors(monitoring_parts.Runner()),
        monitoring.alarms(),
        schedules=schedules,
        clock=clock,
        poll_s=300,
    )
    stop = threading.Event()
    passes: list[Pass] = []
    loop = threading.Thread(target=scheduler.run_forever, args=(stop, passes.append))
    loop.start()
    try:
        wait_for("the 06:00 batch run", lambda: [r for p in passes for r in p.scheduled])
    finally:
        stop.set()
        loop.join(30)
    assert not loop.is_alive()
    [job] = batch.batch_jobs()
    assert job.spec["output"].endswith("2026-12-07T0600")


@pytest.mark.parametrize("gap", ["none", "break", "slept"])
def test_a_tick_held_up_by_a_long_pass_runs_under_skip_but_one_missed_in_a_break_does_not(
    parts: tuple[Parts, monitoring_parts.Parts],
    request_: TransformRequest,
    gap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``slept``: the pass seemed to take 20 minutes because the machine was suspended during
    it (the boot-time clock ran on, the monotonic one did not): nobody was looking."""
    batch, monitoring = parts
    suspended = [0.0]
    monkeypatch.setattr(scheduler_module, "slept_s", lambda: suspended[0])
    clock = batch.clock
    clock.now = T0 + timedelta(minutes=50)
    schedules, _ = batch.service(clock=clock)
    schedules.create("hourly", cron="0 * * * *", request=request_, missed="skip")

    def chore(now: datetime) -> None:  # the first pass's housekeeping takes 20 minutes
        if gap != "break":
            clock.now += timedelta(minutes=20)
        if gap == "slept":
            suspended[0] += 20 * 60

    scheduler = Scheduler(
        monitoring.monitors(monitoring_parts.Runner()),
        monitoring.alarms(),
        schedules=schedules,
        clock=clock,
        housekeeping=[chore],
    )
    assert scheduler.run_once().scheduled == []  # 05:50, nothing due
    if gap == "break":  # the pass was quick, then the loop stopped (the machine slept)
        clock.now += timedelta(minutes=20)
    [run] = scheduler.run_once().scheduled  # 06:10: the 06:00 tick, 10 minutes late
    assert (run.tick, run.late) == (T0 + timedelta(hours=1), True)
    if gap == "none":
        assert run.status is ScheduleRunStatus.SUBMITTED, "held up by the pass, not missed"
        assert len(batch.batch_jobs()) == 1
    else:
        assert run.status is ScheduleRunStatus.SKIPPED, "no scheduler ran at 06:00"
        assert batch.batch_jobs() == []
