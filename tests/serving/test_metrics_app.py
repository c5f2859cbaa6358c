"""Metrics in the serving app bootstrap builds: ``GET /metrics`` counts what was sent, exactly,
per endpoint, variant, protocol and status, with input, output, size and batch statistics equal
to those computed from the sent rows; the per-minute series hold the same numbers once the
server stops; and a server with metrics off has neither."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from modelyard.bootstrap import Platform, serving_app
from modelyard.config import load_settings
from modelyard.domain.metrics import MetricPoint
from modelyard.serving.metrics import Metrics
from modelyard.serving.metrics_series import minute_of
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.metric_store import SqlMetricStore
from tests.serving.metrics_support import (
    csv_body,
    lifespan,
    make_platform,
    parse,
    serving,
    total,
    value,
)
from tests.waiting import DEADLINE_S

API = {"endpoint": "api", "variant": "main", "model_version": "1"}
NAMES = ["requests", "rows", "input_missing_fraction.c", "input_mean.a", "repeated_fraction"]
SAGEMAKER = {**API, "protocol": "sagemaker"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("metrics-app") / "home")
    made.close()
    return made


async def scrape_until(client: httpx.AsyncClient, requests: float) -> dict:
    """Poll /metrics until it counts ``requests`` requests in all (drains lag a little)."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            answer = await client.get("/metrics")
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
            samples = parse(answer.text)
            if total(samples, "modelyard_requests_total") >= requests:
                return samples
            await asyncio.sleep(0.05)


def test_metrics_count_what_was_sent(platform: Platform) -> None:
    rng = np.random.default_rng(11)
    batches = [rng.normal(size=(n, 3)) for n in (1, 2, 5, 1)]
    batches[1][0, 2] = np.nan
    batches[2][:, 0] = np.nan
    repeated = batches[0]  # sent 3 times: 2 repeats
    sent = [*batches, repeated, repeated]
    v2_rows = rng.normal(size=(3, 3))

    async def scenario() -> dict:
        async with lifespan(serving_app(platform.settings)) as client:
            csv = {"content-type": "text/csv"}
            for rows in sent:
                ok = await client.post(
                    "/endpoints/api/invocations", content=csv_body(rows), headers=csv
                )
                assert ok.status_code == 200, ok.text
            bad = await client.post("/endpoints/api/invocations", content=b"1,2\n", headers=csv)
            assert bad.status_code == 400
            gone = await client.post("/endpoints/nope/invocations", content=b"1,2,3\n", headers=csv)
            assert gone.status_code == 404
            tensor = {
                "name": "input-0",
                "datatype": "FP64",
                "shape": [3, 3],
                "data": v2_rows.tolist(),
            }
            v2 = await client.post(
                "/v2/models/api/infer", content=orjson.dumps({"inputs": [tensor]})
            )
            assert v2.status_code == 200, v2.text
            return await scrape_until(client, len(sent) + 3)

    samples = asyncio.run(scenario())
    rows = np.concatenate([*sent, v2_rows])
    assert value(samples, "modelyard_requests_total", **SAGEMAKER) == len(sent) + 1
    assert value(samples, "modelyard_requests_total", **API, protocol="v2-rest") == 1
    unknown = {"endpoint": "", "variant": "", "model_version": "", "protocol": "sagemaker"}
    assert value(samples, "modelyard_requests_total", **unknown) == 1
    errors = "modelyard_request_errors_total"
    assert value(samples, errors, **SAGEMAKER, status="400", code="signature_mismatch") == 1
    assert value(samples, errors, **unknown, status="404", code="endpoint_not_found") == 1
    assert total(samples, errors) == 2
    # Every answered request has a latency, in some bucket up to +Inf.
    duration = "modelyard_request_duration_seconds"
    assert value(samples, f"{duration}_count", **SAGEMAKER) == len(sent) + 1
    assert value(samples, f"{duration}_bucket", **SAGEMAKER, le="+Inf") == len(sent) + 1
    assert 0 < value(samples, f"{duration}_sum", **SAGEMAKER) < DEADLINE_S
    # Sizes: the request bodies as sent, the answers as received.
    bodies = sum(len(csv_body(r)) for r in sent) + len(b"1,2\n")
    assert value(samples, "modelyard_request_size_bytes_sum", **API) > bodies  # + the V2 body
    assert value(samples, "modelyard_request_size_bytes_count", **API) == len(sent) + 2
    assert value(samples, "modelyard_response_size_bytes_count", **API) == len(sent) + 1
    # Rows: per request and per model call.
    assert value(samples, "modelyard_request_rows_sum", **API) == len(rows)
    assert value(samples, "modelyard_request_rows_count", **API) == len(sent) + 1
    assert value(samples, "modelyard_batch_rows_sum", **API) == len(rows)
    assert value(samples, "modelyard_repeated_requests_total", **API) == 2
    # Inputs, per feature, as numpy computes them over every predicted row.
    for j, feature in enumerate("abc"):
        column = rows[:, j]
        present = column[~np.isnan(column)]
        labels = {**API, "feature": feature}
        assert value(samples, "modelyard_input_values_total", **labels) == len(present)
        assert value(samples, "modelyard_input_missing_values_total", **labels) == len(
            column
        ) - len(present)
        assert value(samples, "modelyard_input_value_sum", **labels) == pytest.approx(present.sum())
        assert value(samples, "modelyard_input_value_count", **labels) == len(present)
        assert value(samples, "modelyard_input_value_min", **labels) == pytest.approx(present.min())
        assert value(samples, "modelyard_input_value_max", **labels) == pytest.approx(present.max())
    # Outputs: one probability per row, none missing.
    out = {**API, "output": "prediction"}
    assert value(samples, "modelyard_output_values_total", **out) == len(rows)
    assert value(samples, "modelyard_output_missing_values_total", **out) == 0
    assert value(samples, "modelyard_prediction_count", **out) == len(rows)
    assert value(samples, "modelyard_prediction_bucket", **out, le="1.0") == len(rows)
    assert value(samples, "modelyard_prediction_bucket", **out, le="0.0") == 0
    # The worker itself.
    assert value(samples, "modelyard_workers") == 1
    assert value(samples, "modelyard_process_resident_memory_bytes") > 10_000_000
    assert value(samples, "modelyard_model_load_seconds", **API) > 0
    assert value(samples, "modelyard_metrics_dropped_total") == 0


def test_a_redacted_field_is_counted_but_its_values_are_not_shown(platform: Platform) -> None:
    """Its sum, least and greatest value reached /metrics and the minute series in clear:
    with one request a minute, exactly that caller's value, which capture hashes or drops."""
    from modelyard.domain import CaptureConfig

    platform.endpoints.create(
        "private", {"main": "churn:1"}, capture={"main": CaptureConfig.parse(100, ["a:drop"])}
    )
    rows = np.array([[41.5, 0.25, np.nan], [-7.0, 1.0, 2.0]])
    started = datetime.now(UTC)

    async def scenario() -> dict:
        async with lifespan(serving_app(platform.settings)) as client:
            ok = await client.post(
                "/endpoints/private/invocations",
                content=csv_body(rows),
                headers={"content-type": "text/csv"},
            )
            assert ok.status_code == 200, ok.text
            return await scrape_until(client, 1)

    samples = asyncio.run(scenario())
    try:
        names = ["input_mean.a", "input_min.a", "input_max.a", "input_mean.b"]
        table = platform.metrics.table(
            "private", [*names, "input_missing_fraction.a"], since=started - timedelta(minutes=1)
        )
    finally:
        platform.close()
    a = {"endpoint": "private", "variant": "main", "model_version": "1", "feature": "a"}
    assert value(samples, "modelyard_input_values_total", **a) == 2
    assert value(samples, "modelyard_input_missing_values_total", **a) == 0
    for name in ("sum", "min", "max"):
        assert not total(samples, f"modelyard_input_value_{name}", **a), name
    b = {**a, "feature": "b"}
    assert value(samples, "modelyard_input_value_max", **b) == 1.0  # a field kept in clear
    served = [i for i, p in enumerate(table["input_mean.b"]) if p.value is not None]
    assert [table["input_mean.b"][i].value for i in served] == [0.625]
    assert all(table[n][i].value is None for n in names[:3] for i in served)
    assert [table["input_missing_fraction.a"][i].value for i in served] == [0.0]


def test_the_minute_series_hold_the_same_numbers(platform: Platform) -> None:
    rows = np.array([[0.1, 0.2, np.nan], [1.0, -1.0, 2.0]])
    started = datetime.now(UTC)

    async def scenario() -> None:
        async with lifespan(serving_app(platform.settings)) as client:
            for _ in range(4):
                ok = await client.post(
                    "/endpoints/minutes/invocations",
                    content=csv_body(rows),
                    headers={"content-type": "text/csv"},
                )
                assert ok.status_code == 200

    asyncio.run(scenario())  # the last flush happens as the server stops
    # The fixture's platform is closed; reading opens a connection, closed again here.
    try:
        table = platform.metrics.table("minutes", NAMES, since=started - timedelta(minutes=1))
    finally:
        platform.close()
    minutes = served_minutes(table)
    # The four requests are in one minute, or two if a minute turned meanwhile.
    assert 1 <= len(minutes) <= 2
    assert sum(m["requests"] for m in minutes) == 4
    assert sum(m["rows"] for m in minutes) == 8
    for minute in minutes:
        assert minute["input_missing_fraction.c"] == 0.5
        assert minute["input_mean.a"] == pytest.approx(0.55)
    assert sum(m["repeated_fraction"] * m["requests"] for m in minutes) == 3
    # A minute with a worker's row but no request (a server's start) holds none of their rows.
    idle = [i for i, point in enumerate(table["requests"]) if point.value == 0]
    assert all(table["rows"][i].value == 0 for i in idle)
    assert all(table["input_mean.a"][i].value is None for i in idle)


def served_minutes(table: dict[str, list[MetricPoint]]) -> list[dict[str, float | None]]:
    """The minutes of ``table`` with requests, each as ``{name: value}``.

    Not every minute with a row: a worker's start records its models' load times and its
    memory in the minute it starts, read back as 0 requests and no input statistics. Such a
    minute falls in the window when this module's earlier server started in the minute before,
    or this test's server started just before the minute turned (picking minutes by having a
    row made the test flaky).
    """
    return [
        {name: points[i].value for name, points in table.items()}
        for i in range(len(table["requests"]))
        if table["requests"][i].value
    ]


def test_a_minute_holding_only_a_server_start_has_no_requests(
    platform: Platform, tmp_path: Path
) -> None:
    # The worker starts (and drains once) in one minute; its requests come in the next.
    base = minute_of(time.time()) - 3600  # an hour ago: no other test writes those minutes
    requests_came = threading.Event()
    engine = make_engine(platform.settings.resolved_db_url)
    metrics = Metrics(
        tmp_path / "m",
        sink=SqlMetricStore(engine, prune_every_s=0),
        series_clock=lambda: base + (90.0 if requests_came.is_set() else 30.0),
    )
    rows = np.array([[0.1, 0.2, np.nan], [1.0, -1.0, 2.0]])

    async def scenario() -> None:
        async with serving(platform.settings, metrics) as client:
            requests_came.set()
            for _ in range(2):
                ok = await client.post(
                    "/endpoints/api/invocations",
                    content=csv_body(rows),
                    headers={"content-type": "text/csv"},
                )
                assert ok.status_code == 200

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()
    start, until = (datetime.fromtimestamp(t, UTC) for t in (base, base + 120))
    try:
        table = platform.metrics.table(
            "api", [*NAMES, "model_load_seconds"], since=start, until=until
        )
    finally:
        platform.close()
    started, served = ({name: points[i].value for name, points in table.items()} for i in (0, 1))
    assert started["model_load_seconds"] > 0  # the start's row: the model's load time
    assert started["requests"] == started["rows"] == 0
    assert started["input_missing_fraction.c"] is None
    assert started["repeated_fraction"] is None
    assert served_minutes(table) == [served]
    assert served["requests"] == 2
    assert served["rows"] == 4
    assert served["input_missing_fraction.c"] == 0.5
    assert served["input_mean.a"] == pytest.approx(0.55)


def test_with_metrics_off_there_is_no_metrics_route(tmp_path: Path, platform: Platform) -> None:
    settings = load_settings({}, home=platform.settings.home, metrics=False)

    async def scenario() -> int:
        async with lifespan(serving_app(settings)) as client:
            ok = await client.post(
                "/endpoints/api/invocations",
                content=b"1,2,3\n",
                headers={"content-type": "text/csv"},
            )
            assert ok.status_code == 200
            return (await client.get("/metrics")).status_code

    assert asyncio.run(scenario()) == 404
