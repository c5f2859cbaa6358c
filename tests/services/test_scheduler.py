"""The scheduler loop over real stores: a pass runs the due ticks and then the alarms (which see
the runs of that pass), housekeeping prunes old lease rows, and the loop survives a failing
pass and stops when asked."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from modelyard.domain.alarms import AlarmState
from modelyard.services.scheduler import Scheduler
from tests.services.fixtures import parts_fixture
from tests.services.monitoring_parts import ENDPOINT, T0, Parts, Report, Runner, open_parts
from tests.waiting import wait_for

TEN = timedelta(minutes=10)


parts = parts_fixture(open_parts)


def test_a_pass_runs_ticks_then_alarms_and_prunes_old_runs_and_leases(parts: Parts) -> None:
    runner = Runner(reports=lambda now: [Report("blue", {"drift.share": 0.6})])
    monitors, alarms = parts.monitors(runner), parts.alarms()
    monitors.schedule(ENDPOINT, every=TEN)
    alarms.create(
        "drifted",
        endpoint=ENDPOINT,
        metric="drift.share",
        comparison=">",
        threshold=0.5,
        window=TEN,
    )
    scheduler = Scheduler(monitors, alarms, clock=parts.clock)
    first = scheduler.run_once(T0 + TEN)
    assert [r.tick for r in first.runs] == [T0 + TEN]
    assert first.events == [], "the 10:10 run counts in the window that ends at 10:20"
    second = scheduler.run_once(T0 + 2 * TEN)
    assert [r.tick for r in second.runs] == [T0 + 2 * TEN]
    assert [(e.alarm, e.new) for e in second.events] == [("drifted", AlarmState.ALARM)]
    # A week later the old ticks' leases are pruned (the newest of each loop is kept).
    week = T0 + timedelta(days=8)
    assert parts.leases.get("monitor:churn-api", T0 + TEN) is not None
    scheduler.run_once(week)
    assert parts.leases.get("monitor:churn-api", T0 + TEN) is None
    assert parts.leases.get("monitor:churn-api", week) is not None  # its tick ran and stays
    assert [r.tick for r in monitors.runs(ENDPOINT)] == [week, T0 + 2 * TEN, T0 + TEN]
    # Runs are kept 30 days.
    later = T0 + timedelta(days=40)
    scheduler.run_once(later)
    assert [r.tick for r in monitors.runs(ENDPOINT)] == [later]


class Ticking:
    """A clock that moves a minute every time it is read."""

    def __init__(self) -> None:
        self.now = T0
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += timedelta(minutes=1)
            return self.now


def test_the_loop_survives_a_failing_pass_and_stops_when_asked(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Ticking()
    runner = Runner()
    monitors = parts.monitors(runner)
    monitors.schedule(ENDPOINT, every=TEN)
    failures = []

    def broken_chore(now: datetime) -> None:
        failures.append(now)
        raise RuntimeError("housekeeping bug")

    alarms = parts.alarms()
    evaluations: list[datetime] = []

    def record(now: datetime) -> list[Any]:  # the first pass fails after its monitor runs
        evaluations.append(now)
        if len(evaluations) == 1:
            raise RuntimeError("alarm evaluation bug")
        return real_record(now)

    real_record, alarms.record = alarms.record, record  # type: ignore[method-assign]
    scheduler = Scheduler(monitors, alarms, clock=clock, poll_s=0.01, housekeeping=[broken_chore])
    stop = threading.Event()
    passes = []
    loop = threading.Thread(target=scheduler.run_forever, args=(stop, passes.append))
    with caplog.at_level(logging.ERROR, logger="modelyard.scheduler"):
        loop.start()
        try:
            wait_for("three ticks run by the loop", lambda: len(runner.calls), lambda n: n >= 3)
        finally:
            stop.set()
            loop.join(30)
    assert not loop.is_alive()
    assert failures, "the chore ran (and failed)"
    assert "scheduler pass failed" in caplog.text and "alarm evaluation bug" in caplog.text
    # A chore's failure is its own: logged as the chore's, and the pass it ran in still
    # counts (the chore runs in the first pass, which also fails its alarm evaluation; the
    # second pass is the first to report).
    assert "broken_chore failed; retried in an hour" in caplog.text
    assert "housekeeping bug" in caplog.text
    assert passes, "passes after the failing one were reported"
    ticks = [now for _, _, now in runner.calls]
    assert ticks == sorted(set(ticks)), "each tick once, in order"
