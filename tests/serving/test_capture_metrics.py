"""Capture in ``GET /metrics``: rows dropped by a full queue and rows lost to a destination
that fails show as ``modelyard_capture_rows_total{outcome=...}``, equal to what the worker's
capture writer counted, and the rows still queued as ``modelyard_capture_queue_rows``.

Real parts: the serving app (SageMaker route, inference core, a fitted model) on a real store,
a real capture folder whose root is a file (so every write fails), held inside a write by a
gate while requests arrive; /metrics read through prometheus_client's parser.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelyard.bootstrap import Platform, serving_app
from modelyard.config import Settings, load_settings
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.serving.metrics import Metrics
from modelyard.serving.monitoring import MonitoringWrapper
from modelyard.storage.capture_files import CaptureFolder
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import GatedFolder, invoke, make_platform
from tests.serving.metrics_support import Samples, parse, value
from tests.waiting import DEADLINE_S, wait_for

ROWS = "modelyard_capture_rows_total"
FILES = "modelyard_capture_files_total"
QUEUE = "modelyard_capture_queue_rows"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("capture-metrics") / "home")
    made.close()
    return made


@asynccontextmanager
async def serving(
    settings: Settings, writer: CaptureWriter, metrics: Metrics
) -> AsyncIterator[httpx.AsyncClient]:
    """The serving app assembled as ``bootstrap.serving_app`` assembles it (one layer records
    each call for both; the metrics read ``writer``'s counters and hand it the captured calls),
    with the writer and metrics the test made."""
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
            scratch=settings.home / "tmp" / "cm",
        ),
        predict_executor=executor,
    )
    app = build_app(
        deployer,
        ServerOptions(),
        [MonitoringWrapper(capture=writer, metrics=metrics)],
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


async def scrape(client: httpx.AsyncClient) -> Samples:
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def capture_counts(samples: Samples) -> dict[str, float]:
    rows = {o: value(samples, ROWS, outcome=o) for o in ("captured", "dropped", "written")}
    return {
        **rows,
        "failed": value(samples, ROWS, outcome="failed"),
        "failed_files": value(samples, FILES, outcome="failed"),
        "queue": value(samples, QUEUE),
    }


async def wait_for_counts(
    client: httpx.AsyncClient, what: str, until: Callable[[dict[str, float], Samples], bool]
) -> dict[str, float]:
    """Scrape until ``until(counts, samples)`` holds (the drain lags by one interval)."""
    loop = asyncio.get_running_loop()

    def observe() -> tuple[dict[str, float], Samples]:
        samples = asyncio.run_coroutine_threadsafe(scrape(client), loop).result(DEADLINE_S)
        return capture_counts(samples), samples

    counts, _ = await asyncio.to_thread(wait_for, what, observe, lambda seen: until(*seen))
    return counts


def exactly(**expected: float) -> Callable[[dict[str, float], Samples], bool]:
    return lambda counts, _: all(counts[k] == v for k, v in expected.items())


def test_dropped_queued_and_failed_rows_are_the_writers_counts(
    platform: Platform, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the capture root should be")
    gated = GatedFolder(CaptureFolder(str(blocker / "capture")))
    writer = CaptureWriter(gated, max_rows=4, roll_s=0.0, flush_s=0.02)
    metrics = Metrics(
        tmp_path / "metrics", drain_s=0.02, remove_directory=True, capture=writer.counters
    )
    rows = np.random.default_rng(4).normal(size=(8, 3))

    async def scenario() -> None:
        async with serving(platform.settings, writer, metrics) as client:
            zero = await wait_for_counts(
                client,
                "the capture series, at zero before any request",
                lambda _, samples: (ROWS, frozenset({("outcome", "dropped")})) in samples,
            )
            assert zero == dict.fromkeys(zero, 0.0)
            await invoke(client, "api", rows[0])
            # The writer takes that row and is held inside its write: the queue fills.
            assert await asyncio.to_thread(gated.waiting.wait, DEADLINE_S)
            for row in rows[1:5]:
                await invoke(client, "api", row)  # 4 rows: the queue is full
            for row in rows[5:8]:
                await invoke(client, "api", row)  # dropped, answered all the same
            held = writer.counters()
            assert (held.dropped_rows, held.pending_rows) == (3, 4)
            seen = await wait_for_counts(
                client, "3 dropped and 4 queued", exactly(dropped=3, queue=4, captured=5)
            )
            assert seen["failed"] == 0 and seen["written"] == 0
            gated.gate.set()  # every write now fails: the root is a file
            assert await asyncio.to_thread(writer.flush, DEADLINE_S)
            done = writer.counters()
            assert (done.failed_rows, done.written_rows, done.pending_rows) == (5, 0, 0)
            # One drain's values reach the files one by one: wait for all of them.
            await wait_for_counts(
                client,
                "the writer's counts",
                exactly(
                    captured=done.queued_rows,
                    dropped=done.dropped_rows,
                    written=done.written_rows,
                    failed=done.failed_rows,
                    failed_files=done.failed_writes,
                    queue=0,
                ),
            )

    asyncio.run(scenario())


def test_the_server_bootstrap_builds_counts_its_capture_writer(
    platform: Platform, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the capture root should be")
    settings = load_settings(
        {},
        home=platform.settings.home,
        capture_url=str(blocker / "capture"),
        capture_queue_rows=4,
        capture_roll_s=0.01,
    )
    big = np.random.default_rng(5).normal(size=(5, 3))

    async def scenario() -> dict[str, float]:
        async with lifespan(serving_app(settings)) as client:
            for _ in range(2):
                await invoke(client, "api", big)  # 5 rows never fit a queue of 4
            for row in big[:3]:
                await invoke(client, "api", row)
            # Every row is captured or dropped; every captured row is lost to the file root.
            return await wait_for_counts(
                client,
                "every sent row dropped or failed",
                lambda c, _: (
                    c["captured"] + c["dropped"] == 13
                    and c["failed"] == c["captured"]
                    and c["queue"] == 0
                ),
            )

    counts = asyncio.run(scenario())
    assert counts["dropped"] >= 10 and counts["captured"] >= 1  # the first 1-row one fits
    assert counts["failed_files"] >= 1 and counts["written"] == 0


TOKENS_MODEL = """
class Model:
    def load(self, artifacts_dir):
        pass

    def predict(self, data):
        return [float(len(tokens)) for tokens in data["tokens"]]
"""
TOKENS_HANDLER = """
import pandas as pd


def input_fn(body, content_type):
    lines = [line for line in body.decode("utf-8").splitlines() if line.strip()]
    return pd.DataFrame({"tokens": [line.split() for line in lines]})
"""


def test_rows_the_metrics_cannot_read_still_reach_capture_and_spare_other_endpoints(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler's rows the metrics' statistics cannot digest (a column of token lists) cost
    that variant's input metrics, never its captured rows nor another endpoint's metrics: the
    drain used to raise, losing every call it took and leaking their reserved queue rows."""
    import pandas as pd
    import pyarrow.parquet as pq

    from modelyard.domain import CaptureConfig, Trust

    platform = make_platform(tmp_path / "home")
    (tmp_path / "tokens.py").write_text(TOKENS_MODEL)
    (tmp_path / "handler.py").write_text(TOKENS_HANDLER)
    platform.registry.register(
        "tokens",
        tmp_path / "tokens.py",
        flavor="pyfunc",
        input_example=pd.DataFrame({"tokens": [["a", "b"]]}),
        handler=tmp_path / "handler.py",
        trust=Trust(user_code=True),
    )
    platform.endpoints.create(
        "tokens", {"main": "tokens:1"}, capture={"main": CaptureConfig.parse(100)}
    )
    platform.close()
    root = tmp_path / "capture"
    writer = CaptureWriter(CaptureFolder(str(root)), roll_s=0.0, flush_s=0.02)
    metrics = Metrics(
        tmp_path / "metrics", drain_s=0.02, remove_directory=True, capture=writer.counters
    )

    api_feature = {"endpoint": "api", "variant": "main", "model_version": "1", "feature": "a"}

    async def scenario() -> tuple[str, str]:
        async with serving(platform.settings, writer, metrics) as client:
            answer = await client.post(
                "/endpoints/tokens/invocations",
                content="a b c\nd e\n",
                headers={"content-type": "text/plain"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == [3.0, 2.0]
            api_id, _ = await invoke(client, "api", [0.5, -0.5, 7.0])
            seen = await wait_for_counts(
                client,
                "both requests' rows written, the queue empty, api's input counted",
                lambda counts, samples: (
                    counts["written"] == 3
                    and counts["queue"] == 0
                    and value(samples, "modelyard_input_values_total", **api_feature) == 1
                ),
            )
            assert seen["failed"] == 0 and seen["dropped"] == 0
            return answer.headers["x-modelyard-inference-id"], api_id

    with caplog.at_level(logging.ERROR, logger="modelyard.serving"):
        tokens_id, api_id = asyncio.run(scenario())
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and "metrics of tokens/main" in logged[0], logged
    tokens = pq.read_table(next((root / "tokens").rglob("*.parquet"))).to_pandas()
    assert list(tokens["inference_id"]) == [tokens_id, tokens_id]
    assert [list(t) for t in tokens["input.tokens"]] == [["a", "b", "c"], ["d", "e"]]
    assert list(tokens["output.prediction"]) == [3.0, 2.0]
    api = pq.read_table(next((root / "api").rglob("*.parquet"))).to_pandas()
    assert list(api["inference_id"]) == [api_id] and list(api["input.a"]) == [0.5]


def test_values_the_model_refuses_are_the_callers_400_never_a_model_failure(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``churn`` (a logistic regression) takes no missing values: its runtime says so with a
    SignatureMismatch. The caller gets a 400 naming it on every protocol, counted as such in
    the error series; it used to be a 424/500 "model failed", an ERROR with a traceback per
    request, and a server error in the metrics."""
    import orjson

    settings = load_settings(
        {}, home=platform.settings.home, capture_url=str(tmp_path / "capture"), capture_roll_s=0.01
    )
    missing = {
        "name": "input-0", "datatype": "FP64", "shape": [1, 3], "data": [[1.0, None, 3.0]],
    }  # fmt: skip

    async def scenario() -> Samples:
        async with lifespan(serving_app(settings)) as client:
            csv = await client.post(
                "/endpoints/api/invocations",
                content=b"1.0,,3.0\n",
                headers={"content-type": "text/csv"},
            )
            assert csv.status_code == 400, csv.text
            assert csv.headers["x-amzn-errortype"] == "ValidationError"
            assert csv.json()["error_code"] == "signature_mismatch"
            assert "NaN" in csv.json()["message"]
            v2 = await client.post(
                "/v2/models/api/infer", content=orjson.dumps({"inputs": [missing]})
            )
            assert v2.status_code == 400 and "NaN" in v2.json()["error"], v2.text
            await invoke(client, "api", [1.0, 2.0, 3.0])
            await wait_for_counts(client, "the good request captured", exactly(captured=1))
            return await scrape(client)

    with caplog.at_level(logging.WARNING, logger="modelyard"):
        samples = asyncio.run(scenario())
    errors = "modelyard_request_errors_total"
    api = {"endpoint": "api", "variant": "main", "model_version": "1"}
    for protocol in ("sagemaker", "v2-rest"):
        labels = {**api, "protocol": protocol, "status": "400", "code": "signature_mismatch"}
        assert value(samples, errors, **labels) == 1, protocol
    assert (
        value(samples, errors, **api, protocol="sagemaker", status="424", code="model_failed") == 0
    )
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
