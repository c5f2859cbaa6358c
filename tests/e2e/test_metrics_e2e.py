"""``GET /metrics`` of a real ``modelyard serve --workers 2``: whichever worker answers, it gives
the sums over both workers, exactly what was sent (requests, errors by status, rows, input
sums); every request's server latency is within what its client saw, bucket by bucket; and a
worker killed mid-run leaves its counts in the sums while its live gauges leave them."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import numpy as np

from modelyard.bootstrap import Platform
from tests.e2e.conftest import Server
from tests.e2e.metrics_load import INVOKE, JSON, scrape, send
from tests.serving.metrics_support import Samples, total, value
from tests.waiting import wait_for

API = {"endpoint": "churn-api", "variant": "main", "model_version": "2"}
SAGEMAKER = {**API, "protocol": "sagemaker"}
REQUESTS = 120


def test_two_workers_sum_exactly(
    platform: Platform, serve: Callable[..., Server], models: dict[str, Any]
) -> None:
    platform.endpoints.create("churn-api", {"main": "churn:2"})
    server = serve(workers=2)
    rng = np.random.default_rng(8)
    pool = [models["x"][rng.integers(0, 3000, size=n)] for n in rng.integers(1, 4, size=2000)]
    sent = send(server, pool, REQUESTS)
    n = len(sent.rows)
    with server.client() as client:
        for _ in range(5):  # refused before reaching the model
            assert client.post(INVOKE, content=b"{", headers=JSON).status_code == 400
        for _ in range(3):
            assert client.post("/endpoints/nope/invocations", content=b"[]").status_code == 404

    # Every worker, asked on a connection of its own, answers with the same sums.
    answered: dict[str, Samples] = {}

    def exact_from_each() -> dict[str, float]:
        worker, samples = scrape(server)
        counts = {
            "requests": value(samples, "modelyard_requests_total", **SAGEMAKER),
            "errors": total(samples, "modelyard_request_errors_total"),
            "workers": value(samples, "modelyard_workers"),
        }
        if counts == {"requests": n + 5, "errors": 8, "workers": 2}:
            answered[worker] = samples
        return {**counts, "answered": len(answered)}

    wait_for(
        "both workers scraped with exact counts", exact_from_each, lambda c: c["answered"] == 2
    )
    assert set(answered) == sent.workers
    samples = answered[sorted(answered)[0]]

    errors = "modelyard_request_errors_total"
    assert value(samples, errors, **SAGEMAKER, status="400", code="invalid_payload") == 5
    unknown = {"endpoint": "", "variant": "", "model_version": "", "protocol": "sagemaker"}
    assert value(samples, errors, **unknown, status="404", code="endpoint_not_found") == 3
    rows = np.concatenate(sent.rows)
    assert value(samples, "modelyard_request_rows_sum", **API) == len(rows)
    assert value(samples, "modelyard_batch_rows_sum", **API) == len(rows)
    for j in (0, 7, 29):
        labels = {**API, "feature": f"f{j}"}
        assert value(samples, "modelyard_input_values_total", **labels) == len(rows)
        assert np.isclose(value(samples, "modelyard_input_value_sum", **labels), rows[:, j].sum())
        assert value(samples, "modelyard_input_value_max", **labels) == rows[:, j].max()

    # Latency: each request took the server no longer than its client waited, so at every
    # bucket bound the server has counted at least as many requests as the client saw.
    duration = "modelyard_request_duration_seconds"
    buckets = {
        float(dict(labels)["le"]): count
        for (name, labels), count in samples.items()
        if name == f"{duration}_bucket" and set(SAGEMAKER.items()) <= labels
    }
    client_side = np.sort(sent.latencies)
    for bound, count in buckets.items():
        assert count >= np.searchsorted(client_side, bound, side="right"), bound
    assert buckets[float("inf")] == n + 5
    assert value(samples, f"{duration}_sum", **SAGEMAKER) < sum(sent.latencies)

    # A worker killed: uvicorn starts another; counts stay, the live gauges follow.
    killed = sorted(sent.workers)[0]
    os.kill(int(killed), signal.SIGKILL)
    live = wait_for(
        "a replacement worker and the dead one out of the live sums",
        lambda: scrape(server)[1],
        lambda s: (
            len([k for k in s if k[0] == "modelyard_worker_resident_memory_bytes"]) == 2
            and value(s, "modelyard_workers") == 2
            and killed not in {dict(k[1]).get("pid") for k in s}
        ),
    )
    assert value(live, "modelyard_requests_total", **SAGEMAKER) == n + 5
