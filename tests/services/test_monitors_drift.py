"""The scheduled drift check end to end, in one process with every part real: the platform
bootstrap builds (its DriftService), a baseline set from a file, requests served by the serving
app (capture on) with one feature shifted, the rows it captured, a schedule's tick run by the
scheduler, and an alarm on the stored drift score that fires on the window holding that tick.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build, serving_app
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig
from modelyard.domain.alarms import AlarmState
from modelyard.domain.monitors import RunStatus
from modelyard.services.scheduler import Scheduler
from modelyard.services.ticks import floor_tick
from tests.serving.asgi_support import lifespan

FEATURES = ["a", "b"]


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    """``score:1`` (a logistic regression on a and b) at endpoint ``api``, capturing all, with
    a baseline of 2,000 rows."""
    from sklearn.linear_model import LogisticRegression

    # A roll of an hour: captured rows are written when the app shuts down.
    made = build(load_settings({}, home=tmp_path / "home", capture_roll_s=3600, metrics=False))
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(2000, 2)), columns=FEATURES)
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    made.registry.register("score", model, flavor="sklearn", input_example=frame[:3])
    baseline = tmp_path / "baseline.csv"
    frame.to_csv(baseline, index=False)
    made.drift.set_baseline("score:1", str(baseline))
    made.endpoints.create("api", {"main": "score:1"}, capture={"main": CaptureConfig.parse(100)})
    return made


async def _serve_shifted(platform: Platform) -> None:
    rng = np.random.default_rng(4)
    async with lifespan(serving_app(platform.settings)) as client:
        for _ in range(5):  # 500 rows: a shifted by 3 standard deviations, b as it was
            rows = rng.normal(size=(100, 2)) + np.array([3.0, 0.0])
            answer = await client.post(
                "/endpoints/api/invocations",
                json={"instances": [dict(zip(FEATURES, r, strict=True)) for r in rows.tolist()]},
            )
            assert answer.status_code == 200, answer.text


def test_a_scheduled_drift_check_finds_the_shift_and_its_alarm_fires(platform: Platform) -> None:
    asyncio.run(_serve_shifted(platform))
    platform.monitors.schedule("api", every=timedelta(seconds=10), window=timedelta(hours=1))
    platform.alarms.create(
        "a-drifted",
        endpoint="api",
        metric="drift.feature.a",
        comparison=">",
        threshold=0.3,
        window=timedelta(minutes=1),
    )
    platform.alarms.create(
        "b-drifted",
        endpoint="api",
        metric="drift.feature.b",
        comparison=">",
        threshold=0.3,
        window=timedelta(minutes=1),
    )
    # A tick after the captured rows: the window that ends there holds all of them.
    tick = floor_tick(datetime.now(UTC), timedelta(seconds=10)) + timedelta(seconds=10)
    scheduler = Scheduler(platform.monitors, platform.alarms)
    (run,) = scheduler.run_once(tick).runs
    assert run.status is RunStatus.SUCCEEDED, run.error
    (report,) = run.reports
    assert (report["variant"], report["current_rows"], report["verdict"]) == ("main", 500, "drift")
    assert report["drifted"] == ["a"]
    scores = run.scores["main"]
    assert scores["drift.feature.a"] > 0.3 > scores["drift.feature.b"]
    assert platform.monitors.runs("api")[0].scores == run.scores
    # The alarms judge the minute holding the tick once it has ended (and settled).
    end = floor_tick(tick, timedelta(minutes=1)) + timedelta(minutes=1)
    events = scheduler.run_once(end + timedelta(minutes=1)).events
    assert sorted((e.alarm, e.new) for e in events) == [
        ("a-drifted", AlarmState.ALARM),
        ("b-drifted", AlarmState.OK),
    ]
