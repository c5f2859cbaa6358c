"""Two schedulers sharing one store (SQLite file, PostgreSQL) start each run exactly once: as
threads with their own connections, and as separate processes, every scheduler asks for the
same ticks at the same moment; each tick makes one job and one run, whoever wins it."""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from modelyard.domain.batch import TransformRequest
from modelyard.domain.schedules import ScheduleRunStatus
from modelyard.services.ticks import cron_next, validate_timezone
from tests.services.schedule_parts import T0, Clock, open_parts

CRON, ZONE = "*/10 * * * *", "Europe/Paris"


def _ticks(count: int) -> list[datetime]:
    ticks, now = [], T0
    for _ in range(count):
        now = cron_next(CRON, validate_timezone(ZONE), now)
        ticks.append(now)
    return ticks


TICKS = _ticks(10)


@pytest.fixture
def url(db_url: str, tmp_path: Path) -> Iterator[str]:
    parts = open_parts(db_url)  # creates the schema
    service, _ = parts.service()
    data = tmp_path / "in.csv"
    data.write_text("1,2\n")
    service.create(
        "often",
        cron=CRON,
        timezone=ZONE,
        request=TransformRequest("churn", str(data), str(tmp_path / "{tick}")),
    )
    parts.close()
    yield db_url


def _schedule_passes(url: str, holder: str, start: Any) -> list[str]:
    """One scheduler: its own engine and stores; a pass at each tick, in step with the other."""
    parts = open_parts(url, Clock(T0))
    try:
        service, _ = parts.service(holder)
        ran = []
        for tick in TICKS:
            start.wait(60)  # both schedulers ask for the same tick at the same moment
            parts.clock.now = tick
            ran += [r.tick.isoformat() for r in service.run_due(tick)]
        return ran
    finally:
        parts.close()


def _check_each_tick_ran_once(url: str, won: list[list[str]]) -> None:
    assert sorted(t for ticks in won for t in ticks) == [t.isoformat() for t in TICKS], won
    parts = open_parts(url)
    try:
        runs = parts.store.list_runs("often", limit=100)
        jobs = parts.batch_jobs()
    finally:
        parts.close()
    assert sorted(r.tick for r in runs) == TICKS
    assert {r.status for r in runs} == {ScheduleRunStatus.SUBMITTED}
    assert sorted(str(r.job) for r in runs) == sorted(j.name for j in jobs)
    outputs = Counter(j.spec["output"] for j in jobs)
    assert len(jobs) == len(TICKS) and max(outputs.values()) == 1, outputs


def test_two_scheduler_threads_start_each_run_once(url: str) -> None:
    start = threading.Barrier(2)
    won: dict[str, list[str]] = {}

    def scheduler(holder: str) -> None:
        won[holder] = _schedule_passes(url, holder, start)

    threads = [threading.Thread(target=scheduler, args=(h,)) for h in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert sorted(won) == ["a", "b"], "both schedulers finished"
    _check_each_tick_ran_once(url, list(won.values()))


def test_two_scheduler_processes_start_each_run_once(url: str) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            pending = [pool.apply_async(_schedule_passes, (url, h, start)) for h in ("p", "q")]
            won = [p.get(timeout=300) for p in pending]
    _check_each_tick_ran_once(url, won)
