"""One layer records each call for both capture and the metrics (as ``bootstrap`` assembles a
server): every sampled call's rows reach the capture files exactly as sent (redacted as
configured, with their own predictions), the metrics count every call, and when the metrics'
buffer is full capture still takes every call on its own queue.

Real parts: the serving app (SageMaker route, inference core, a fitted model) on a real store,
a real capture folder read back through the capture service, /metrics read through
prometheus_client's parser.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform
from modelyard.config import Settings
from modelyard.services.capture import CaptureService
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.serving.metrics import Metrics
from modelyard.serving.monitoring import MonitoringWrapper
from modelyard.storage.capture_files import CaptureFolder
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import invoke, make_platform
from tests.serving.metrics_support import parse, total, value
from tests.waiting import DEADLINE_S


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("monitoring") / "home")
    made.close()
    return made


@asynccontextmanager
async def serving(
    settings: Settings,
    writer: CaptureWriter,
    metrics: Metrics,
    draw: Callable[[], float] = random.random,
) -> AsyncIterator[httpx.AsyncClient]:
    """The serving app assembled as ``bootstrap.serving_app`` assembles it, with the writer,
    metrics and random source the test made."""
    from modelyard.serving.app import ServerOptions, build_app, predict_executor
    from modelyard.serving.deployer import Deployer
    from modelyard.serving.loader import load_served
    from modelyard.storage.artifacts import FsspecArtifactStore
    from modelyard.storage.sql.engine import make_engine
    from modelyard.storage.sql.plan_source import SqlPlanSource

    engine = make_engine(settings.resolved_db_url)
    executor = predict_executor()
    deployer = Deployer(
        SqlPlanSource(engine),
        load=functools.partial(
            load_served,
            FsspecArtifactStore(settings.resolved_artifact_url),
            scratch=settings.home / "tmp" / "mon",
        ),
        predict_executor=executor,
    )
    app = build_app(
        deployer,
        ServerOptions(),
        [MonitoringWrapper(capture=writer, metrics=metrics, draw=draw)],
        companions=[metrics.companion, lambda core: writer],
        observer=metrics,
        metrics=metrics,
    )
    try:
        async with lifespan(app) as client:
            yield client
    finally:
        executor.shutdown()
        engine.dispose()


def _captured(folder: CaptureFolder, endpoint: str) -> pd.DataFrame:
    return CaptureService(folder).read(endpoint, since=datetime.now(UTC) - timedelta(hours=2))


def test_every_sampled_call_is_captured_as_sent_and_every_call_counted(
    platform: Platform, tmp_path: Path
) -> None:
    folder = CaptureFolder(str(tmp_path / "capture"))
    writer = CaptureWriter(folder)
    metrics = Metrics(tmp_path / "metrics", drain_s=0.05, capture=writer.counters)
    rng = np.random.default_rng(6)
    api = [rng.normal(size=(n, 3)) for n in rng.integers(1, 4, size=30)]
    sampled = [rng.normal(size=(1, 3)) for _ in range(80)]
    quiet = [rng.normal(size=(2, 3)) for _ in range(10)]
    replay = random.Random(11)
    expected = sum(replay.random() * 100 < 25 for _ in sampled)  # draws: "sampled" only

    async def scenario() -> tuple[list[Any], list[Any], list[Any], dict[Any, float]]:
        async with serving(platform.settings, writer, metrics, random.Random(11).random) as c:
            answers = await asyncio.gather(
                *(invoke(c, "api", r) for r in api),
                *(invoke(c, "sampled", r) for r in sampled),
                *(invoke(c, "quiet", r) for r in quiet),
            )
            # The flush first has the metrics drain hand over the calls they hold.
            assert await asyncio.to_thread(writer.flush, DEADLINE_S)
            async with asyncio.timeout(DEADLINE_S):
                while True:  # one drain's values reach the files one by one
                    samples = parse((await c.get("/metrics")).text)
                    if total(samples, "modelyard_requests_total") >= len(answers):
                        break
                    await asyncio.sleep(0.02)
        return answers[: len(api)], answers[len(api) : -len(quiet)], answers[-len(quiet) :], samples

    api_answers, sampled_answers, quiet_answers, samples = asyncio.run(scenario())

    frame = _captured(folder, "api")
    assert set(frame["inference_id"]) == {i for i, _ in api_answers}
    for (inference_id, predictions), rows in zip(api_answers, api, strict=True):
        mine = frame[frame["inference_id"] == inference_id].sort_values("row")
        assert mine["row"].tolist() == list(range(len(rows)))
        assert mine["input.a"].tolist() == rows[:, 0].tolist()
        assert mine["input.b"].isna().all()  # dropped
        assert mine["input.ssn"].str.fullmatch("[0-9a-f]{64}").all()  # hashed
        assert mine["output.prediction"].tolist() == predictions
        assert (mine["latency_ms"] > 0).all()
    now = datetime.now(UTC)
    assert ((now - frame["time"]) < timedelta(minutes=5)).all()

    chosen = set(_captured(folder, "sampled")["inference_id"])
    assert len(chosen) == expected and chosen <= {i for i, _ in sampled_answers}
    assert 10 <= expected <= 40  # the seed gives a plain sample, not a corner case
    assert _captured(folder, "quiet").empty and quiet_answers

    def requests(endpoint: str) -> float:
        return total(samples, "modelyard_requests_total", endpoint=endpoint)

    assert (requests("api"), requests("sampled"), requests("quiet")) == (30, 80, 10)
    rows_seen = total(samples, "modelyard_request_rows_sum")
    assert rows_seen == sum(map(len, api)) + len(sampled) + 2 * len(quiet)
    captured_rows = value(samples, "modelyard_capture_rows_total", outcome="captured")
    assert captured_rows == sum(map(len, api)) + expected == writer.counters().written_rows


def test_capture_takes_every_call_when_the_metrics_buffer_is_full(
    platform: Platform, tmp_path: Path
) -> None:
    folder = CaptureFolder(str(tmp_path / "capture"))
    writer = CaptureWriter(folder)
    # No drain until the worker stops, and room for 3 calls: the others are the metrics' loss.
    metrics = Metrics(tmp_path / "metrics", drain_s=3600, max_buffered=3)

    async def scenario() -> list[str]:
        async with serving(platform.settings, writer, metrics) as client:
            ids = [(await invoke(client, "api", [[float(i), 1.0, 2.0]]))[0] for i in range(10)]
            assert await asyncio.to_thread(writer.flush, DEADLINE_S)
            return ids

    ids = asyncio.run(scenario())
    assert set(_captured(folder, "api")["inference_id"]) == set(ids)
    assert metrics.dropped == 7 + 7  # 7 outcomes and 7 calls past the 3 buffered
    counters = writer.counters()
    assert (counters.queued_rows, counters.written_rows, counters.dropped_rows) == (10, 10, 0)
