"""A request's outcome and its rows are folded into the same minute, whenever the drain runs.

The event loop records each request twice: its rows and predictions when the model answers,
its outcome (status, latency, sizes) when its response is ready. A drain that took the first
record of a request but not yet the second would count the rows in one minute and the request
in the next; when the minute turns right then, a minute holds requests without their input
statistics (seen once in CI). Here every drain is a minute of its own (an injected clock) and
drains run back to back while concurrent requests are answered, so any such split shows as a
minute whose request count differs from its count of requests with rows.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain.metrics import SeriesRow
from modelyard.serving.metrics import Metrics
from tests.serving.metrics_support import csv_body, make_platform, serving

CSV = {"content-type": "text/csv"}
REQUESTS = 400


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("metrics-minutes") / "home")
    made.close()
    return made


class Kept:
    """A series sink keeping the last row written per minute (rows replace earlier ones)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, object], SeriesRow] = {}
        self._lock = threading.Lock()

    def write(self, rows: Sequence[SeriesRow]) -> None:
        with self._lock:
            for row in rows:
                self.rows[(row.endpoint, row.variant, row.start)] = row


def test_each_minute_holds_its_requests_with_their_rows(platform: Platform, tmp_path: Path) -> None:
    ticks = itertools.count()
    sink = Kept()
    metrics = Metrics(
        tmp_path / "m",
        sink=sink,
        drain_s=0.0005,
        flush_s=0.05,
        series_clock=lambda: 1_800_000_000.0 + 60.0 * next(ticks),  # a minute per drain
    )
    rows = np.array([[0.1, 0.2, np.nan]])

    async def scenario() -> None:
        async with serving(platform.settings, metrics) as client:

            async def post() -> None:
                answer = await client.post(
                    "/endpoints/api/invocations", content=csv_body(rows), headers=CSV
                )
                assert answer.status_code == 200, answer.text

            for _ in range(REQUESTS // 8):
                await asyncio.gather(*(post() for _ in range(8)))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the drain may take the GIL between any two bytecodes
    try:
        asyncio.run(scenario())  # the last drain and flush happen as the server stops
    finally:
        sys.setswitchinterval(interval)
    minutes = [r.stats.sums for r in sink.rows.values() if r.endpoint == "api"]
    assert sum(m.get("requests", 0.0) for m in minutes) == REQUESTS
    assert len([m for m in minutes if m.get("requests")]) > 10  # the drains did interleave
    split = [m for m in minutes if m.get("requests", 0.0) != m.get("io_requests", 0.0)]
    assert not split, f"{len(split)} minutes hold requests apart from their rows: {split[:2]}"
    assert all(m["in.n.a"] == m["requests"] for m in minutes if m.get("requests"))
