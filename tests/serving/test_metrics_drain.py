"""The drain's edges, in a real serving app: label predictions counted by class, a repeat only
within the window, a full buffer counted as dropped (never a failed request), and a store that
refuses the series for a while gets every minute exactly once when it comes back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain.metrics import SeriesRow
from modelyard.errors import DatabaseUnavailable
from modelyard.serving.metrics import Metrics
from modelyard.serving.metrics_files import exposition
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.metric_store import SqlMetricStore
from tests.serving.metrics_support import (
    FEATURES,
    csv_body,
    make_platform,
    parse,
    serving,
    total,
    value,
)
from tests.waiting import DEADLINE_S, wait_for

API = {"endpoint": "api", "variant": "main", "model_version": "1"}
CSV = {"content-type": "text/csv"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("metrics-drain") / "home")
    made.close()
    return made


async def post(client: httpx.AsyncClient, endpoint: str, rows: np.ndarray) -> None:
    answer = await client.post(
        f"/endpoints/{endpoint}/invocations", content=csv_body(rows), headers=CSV
    )
    assert answer.status_code == 200, answer.text


async def counted(client: httpx.AsyncClient, name: str, at_least: float, **labels: str) -> dict:
    async with asyncio.timeout(DEADLINE_S):
        while True:
            samples = parse((await client.get("/metrics")).text)
            if value(samples, name, **labels) >= at_least:
                return samples
            await asyncio.sleep(0.02)


def test_label_predictions_are_counted_by_class(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    platform = build(load_settings({}, home=tmp_path / "home"))
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=FEATURES)
    model = LogisticRegression().fit(frame, np.where(frame["a"] > 0, "yes", "no"))
    platform.registry.register("labels", model, flavor="sklearn", input_example=frame[:3])
    platform.endpoints.create("labels", {"main": "labels:1"})
    rows = rng.normal(size=(40, 3))
    want = pd.Series(model.predict(pd.DataFrame(rows, columns=FEATURES))).value_counts()

    async def scenario() -> dict:
        async with serving(platform.settings, Metrics(tmp_path / "m", drain_s=0.05)) as client:
            await post(client, "labels", rows)
            # A drain writes its values one by one, so a scrape may see part of one: wait
            # until every prediction is counted.
            async with asyncio.timeout(DEADLINE_S):
                while True:
                    samples = parse((await client.get("/metrics")).text)
                    if total(samples, "modelyard_predicted_class_total") >= len(rows):
                        return samples
                    await asyncio.sleep(0.02)

    samples = asyncio.run(scenario())
    platform.close()
    labels = {"endpoint": "labels", "variant": "main", "model_version": "1", "output": "prediction"}
    for name, count in want.items():
        assert (
            value(samples, "modelyard_predicted_class_total", **labels, **{"class": name}) == count
        )
    assert total(samples, "modelyard_predicted_class_total") == len(rows)
    assert total(samples, "modelyard_prediction_count") == 0  # labels have no numeric histogram


TWO = {"endpoint": "two", "variant": "main", "model_version": "1"}


def test_each_outputs_labels_are_counted_apart(tmp_path: Path) -> None:
    """A model with two label outputs answers two questions: its classes are counted per
    output, not summed into one count per label (which said "yes" was predicted for twice as
    many rows as were sent)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    platform = build(load_settings({}, home=tmp_path / "home"))
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=FEATURES)
    answers = np.stack([np.where(frame[c] > 0, "yes", "no") for c in ("a", "b")], axis=1)
    model = MultiOutputClassifier(LogisticRegression()).fit(frame, answers)
    platform.registry.register("two", model, flavor="sklearn", input_example=frame[:3])
    platform.endpoints.create("two", {"main": "two:1"})
    rows = rng.normal(size=(40, 3))
    want = model.predict(pd.DataFrame(rows, columns=FEATURES))

    async def scenario() -> dict:
        async with serving(platform.settings, Metrics(tmp_path / "m", drain_s=0.05)) as client:
            await post(client, "two", rows)
            async with asyncio.timeout(DEADLINE_S):  # a scrape may see part of a drain
                while True:
                    samples = parse((await client.get("/metrics")).text)
                    if total(samples, "modelyard_predicted_class_total") >= 2 * len(rows):
                        return samples
                    await asyncio.sleep(0.02)

    samples = asyncio.run(scenario())
    platform.close()
    for j, output in enumerate(("0", "1")):
        for name in ("yes", "no"):
            got = value(
                samples, "modelyard_predicted_class_total", **TWO, output=output, **{"class": name}
            )
            assert got == (want[:, j] == name).sum(), (output, name)
    assert total(samples, "modelyard_predicted_class_total") == 2 * len(rows)


@pytest.mark.parametrize(("window_s", "repeats"), [(600.0, 1), (0.0, 0)])
def test_a_repeat_counts_only_within_the_window(
    platform: Platform, tmp_path: Path, window_s: float, repeats: int
) -> None:
    rows = np.array([[0.3, 0.1, 0.2]])
    metrics = Metrics(tmp_path / "m", drain_s=0.05, repeat_window_s=window_s)

    async def scenario() -> dict:
        async with serving(platform.settings, metrics) as client:
            await post(client, "api", rows)
            # Drained before the second: the repeat is judged against the remembered time.
            await counted(client, "modelyard_request_rows_count", 1, **API)
            await post(client, "api", rows)
            return await counted(client, "modelyard_request_rows_count", 2, **API)

    samples = asyncio.run(scenario())
    assert value(samples, "modelyard_repeated_requests_total", **API) == repeats


def test_a_full_buffer_drops_records_never_requests(platform: Platform, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    metrics = Metrics(folder, drain_s=3600, max_buffered=3)  # no drain until the worker stops

    async def scenario() -> None:
        async with serving(platform.settings, metrics) as client:
            for i in range(10):
                await post(client, "api", np.array([[float(i), 1.0, 2.0]]))

    asyncio.run(scenario())
    samples = parse(exposition(folder).decode())  # the files outlive the worker
    assert value(samples, "modelyard_requests_total", **API, protocol="sagemaker") == 3
    assert value(samples, "modelyard_request_rows_count", **API) == 3
    assert value(samples, "modelyard_metrics_dropped_total") == 14  # 7 outcomes + 7 row records
    assert value(samples, "modelyard_workers") == 0  # it stopped: out of the live sums


class Outage:
    """The real series store behind a switch: while ``down``, every write fails."""

    def __init__(self, store: SqlMetricStore) -> None:
        self._store = store
        self.down = threading.Event()
        self.refused = 0

    def write(self, rows: Sequence[SeriesRow]) -> None:
        if self.down.is_set():
            self.refused += 1
            raise DatabaseUnavailable("the metadata database is down (test)")
        self._store.write(rows)


def test_series_survive_a_store_outage_without_counting_twice(
    platform: Platform, tmp_path: Path
) -> None:
    engine = make_engine(platform.settings.resolved_db_url)
    sink = Outage(SqlMetricStore(engine, prune_every_s=0))
    sink.down.set()
    started = datetime.now(UTC)
    metrics = Metrics(tmp_path / "m", sink=sink, drain_s=0.05, flush_s=0.05)

    async def scenario() -> None:
        async with serving(platform.settings, metrics) as client:
            for _ in range(3):
                await post(client, "minutes", np.array([[1.0, 2.0, 3.0]]))
            await asyncio.to_thread(
                wait_for, "refused flushes", lambda: sink.refused, lambda n: n >= 2
            )
            sink.down.clear()
            for _ in range(2):
                await post(client, "minutes", np.array([[1.0, 2.0, 3.0]]))

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()
    points = platform.metrics.series("minutes", "requests", since=started - timedelta(minutes=1))
    assert sum(p.value for p in points if p.value is not None) == 5


def test_error_labels_carry_the_status_the_caller_got() -> None:
    """A SageMaker caller gets 424 (``ModelError``) when the model raises, and the error
    series says 424 too (an alert on 424 finds them); other protocols answer it with 500."""
    import asyncio

    from modelyard.errors import (
        EndpointNotFound,
        InvalidPayload,
        ModelFailed,
        ModelLoadFailed,
        ModelNotReady,
    )
    from modelyard.serving.metrics_drain import server_fault, status_of

    failed = ModelFailed("the model raised")
    assert status_of(failed, "sagemaker") == ("424", "model_failed")
    assert status_of(failed, "v2-rest") == status_of(failed, "v2-grpc") == ("500", "model_failed")
    assert status_of(InvalidPayload("bad"), "sagemaker") == ("400", "invalid_payload")
    assert status_of(EndpointNotFound("x"), "sagemaker") == ("404", "endpoint_not_found")
    assert status_of(asyncio.CancelledError(), "sagemaker") == ("499", "cancelled")
    assert status_of(RuntimeError("a defect"), "v2-rest") == ("500", "internal")
    # SageMaker's ModelNotReadyException is a 429 (botocore's model); V2 answers 503. Both are
    # the server's fault, as the model's 424 is; a refused request is not.
    not_ready = ModelNotReady("endpoint 'x' is not ready")
    assert status_of(not_ready, "sagemaker") == ("429", "model_not_ready")
    assert status_of(not_ready, "v2-rest") == ("503", "model_not_ready")
    assert status_of(ModelLoadFailed("failed"), "sagemaker") == ("429", "model_load_failed")
    faults = [status_of(e, "sagemaker") for e in (failed, not_ready, RuntimeError("a defect"))]
    assert all(server_fault(*labels) for labels in faults)
    assert not server_fault(*status_of(InvalidPayload("bad"), "sagemaker"))


def test_a_minute_of_values_near_the_largest_float_keeps_its_mean(
    platform: Platform, tmp_path: Path
) -> None:
    """Feature ``a`` at 1.5e308 in every row: a request's three rows already sum past the
    largest float, and the minute's requests more so. The sum used to be infinite (a
    RuntimeWarning in the drain), dropped by the store, and the minute's mean read as none."""
    # An endpoint of its own: the module's platform is shared, and "minutes" holds the rows
    # other tests sent within the minute this one reads.
    platform.endpoints.create("huge", {"main": "churn:1"})
    engine = make_engine(platform.settings.resolved_db_url)
    started = datetime.now(UTC)
    metrics = Metrics(
        tmp_path / "m", sink=SqlMetricStore(engine, prune_every_s=0), drain_s=0.05, flush_s=0.05
    )
    rows = np.array([[1.5e308, 2.0, 3.0]] * 3)

    async def scenario() -> None:
        async with serving(platform.settings, metrics) as client:
            for _ in range(4):
                await post(client, "huge", rows)

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()
    table = platform.metrics.table(
        "huge", ["rows", "input_mean.a", "input_mean.b"], since=started - timedelta(minutes=1)
    )
    assert sum(p.value for p in table["rows"] if p.value is not None) == 12
    means = [p.value for p in table["input_mean.a"] if p.value is not None]
    assert means and all(m == pytest.approx(1.5e308) for m in means), table["input_mean.a"]
    assert [p.value for p in table["input_mean.b"] if p.value is not None] == [2.0] * len(means)
