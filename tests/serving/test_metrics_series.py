"""A worker's per-minute series (``metrics_series``) against the real store and reader.

Each flush replaces the worker's row of a minute with what the worker holds of it, so the
series must hold a minute whole for as long as a drain can still add to it. A drain reads its
clock before it folds: one that began just before the minute turned adds to that minute after
the flush thread, already in the next minute, wrote it. Here that interleaving is driven
exactly (the drain's clock read runs the flush), in a real serving app, and the minute read
back must hold every request. Written minutes are still forgotten once the drains are past
them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import SeriesRow
from modelyard.serving.dataplane import DataPlane
from modelyard.serving.metrics import Metrics
from modelyard.serving.metrics_series import MinuteSeries, minute_of
from modelyard.serving.metrics_worker import MetricsCompanion
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.metric_store import SqlMetricStore
from tests.serving.metrics_support import csv_body, make_platform, serving

CSV = {"content-type": "text/csv"}
NAMES = ["requests", "rows", "input_missing_fraction.c", "input_mean.a"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("metrics-series") / "home")
    made.close()
    return made


class Watched(Metrics):
    """The metrics, keeping the drain companion it makes (the test runs its series' flush)."""

    made: MetricsCompanion | None = None

    def companion(self, core: DataPlane) -> MetricsCompanion:
        self.made = super().companion(core)
        return self.made


async def post(client: httpx.AsyncClient, rows: np.ndarray) -> None:
    answer = await client.post("/endpoints/api/invocations", content=csv_body(rows), headers=CSV)
    assert answer.status_code == 200, answer.text


def at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute, UTC)


def test_a_drain_that_read_its_clock_before_the_minute_turned_keeps_the_minute_whole(
    platform: Platform, tmp_path: Path
) -> None:
    base = minute_of(time.time()) - 3600  # an hour ago: no other test writes that minute
    late = threading.Event()
    flushed: list[bool] = []

    def clock() -> float:
        if late.is_set():
            late.clear()
            # This drain reads 59.5 s into the minute; the flush thread runs at 60.5 s, after
            # the read and before the drain adds what it took (the order of the two lines
            # here does not matter: the read is only a number).
            series = metrics.made.series if metrics.made is not None else None
            flushed.append(series is not None and series.flush(base + 60.5))
        return base + 59.5

    engine = make_engine(platform.settings.resolved_db_url)
    # No periodic drain nor flush: the test drains (``feed``) and flushes when it means to.
    metrics = Watched(
        tmp_path / "m",
        sink=SqlMetricStore(engine, prune_every_s=0),
        drain_s=3600,
        flush_s=3600,
        series_clock=clock,
    )
    rows = np.array([[0.1, 0.2, np.nan], [1.0, -1.0, 2.0]])

    async def scenario() -> None:
        async with serving(platform.settings, metrics) as client:
            for _ in range(3):
                await post(client, rows)
            await asyncio.to_thread(metrics.feed)  # a drain: three requests in the minute
            await post(client, rows)
            late.set()
            await asyncio.to_thread(metrics.feed)  # the late drain: the fourth request

    try:
        asyncio.run(scenario())  # the last flush happens as the server stops
    finally:
        engine.dispose()
    try:
        table = platform.metrics.table("api", NAMES, since=at(base), until=at(base + 60))
    finally:
        platform.close()
    assert flushed == [True]  # the flush did run inside the late drain
    minute = {name: points[0].value for name, points in table.items()}
    # Without the minute kept whole, its row would hold the late drain's request alone.
    assert minute == {
        "requests": 4.0,
        "rows": 8.0,
        "input_missing_fraction.c": 0.5,
        "input_mean.a": pytest.approx(0.55),
    }


class Writes:
    """A sink keeping each write's rows as ``(minute, requests)``, sorted."""

    def __init__(self) -> None:
        self.writes: list[list[tuple[int, float]]] = []

    def write(self, rows: Sequence[SeriesRow]) -> None:
        self.writes.append(
            sorted((int(r.start.timestamp()), r.stats.sums["requests"]) for r in rows)
        )


def served(requests: float) -> dict[tuple[str, str], MetricStats]:
    return {("api", "main"): MetricStats(sums={"requests": requests})}


def test_written_minutes_are_forgotten_once_the_drains_are_past_them() -> None:
    sink = Writes()
    series = MinuteSeries(sink, "host:1:1")
    minute = minute_of(1_800_000_000)
    series.update(minute, served(2))
    assert series.flush(minute + 600)  # the clock is far past, but no drain is yet
    assert len(series) == 1
    series.update(minute, served(1))  # so a late drain still adds to the whole minute
    series.update(minute + 660, served(5))
    assert series.flush(minute + 661)
    assert sink.writes == [[(minute, 2.0)], [(minute, 3.0), (minute + 660, 5.0)]]
    assert len(series) == 1  # the first minute is over: a drain added to a later one
    assert series.flush(minute + 700)  # nothing changed: nothing written
    assert len(sink.writes) == 2
