"""Capture on a real ``modelyard serve`` with two workers: every request answered is in the
captured files once stopped (each worker writes its own files, no lock between them), with
the rows sent and the predictions returned."""

from __future__ import annotations

import re
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from modelyard.bootstrap import Platform
from modelyard.domain import CaptureConfig


def test_two_workers_capture_every_request(platform: Platform, serve: Any, models: Any) -> None:
    platform.endpoints.create(
        "api", {"main": "churn:2"}, capture={"main": CaptureConfig.parse(100)}
    )
    server = serve(workers=2)
    rows = np.random.default_rng(5).normal(size=(48, len(models["names"])))

    def call(i: int) -> tuple[str, str, list[float]]:
        body = {"instances": rows[2 * i : 2 * i + 2].tolist()}
        with httpx.Client(base_url=server.url, timeout=10) as client:  # a connection each
            answer = client.post("/endpoints/api/invocations", json=body)
        assert answer.status_code == 200, answer.text
        headers = answer.headers
        return headers["x-modelyard-inference-id"], headers["x-modelyard-worker"], answer.json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(call, range(24)))
    server.stop()  # a graceful stop: each worker writes what it holds

    captured = platform.capture.read("api", since=datetime.now(UTC) - timedelta(hours=2))
    assert sorted(set(captured["inference_id"])) == sorted(a[0] for a in answers)
    assert len(captured) == 48
    features = [f"input.{n}" for n in models["names"]]
    for i, (inference_id, _, predictions) in enumerate(answers):
        mine = captured[captured["inference_id"] == inference_id].sort_values("row")
        np.testing.assert_array_equal(mine[features].to_numpy(), rows[2 * i : 2 * i + 2])
        # The response writes each value in the shortest text of the model's dtype: read back
        # in that dtype, it is the captured value exactly.
        kept = mine["output.prediction"].to_numpy()
        answered = np.asarray(predictions["predictions"], dtype=kept.dtype)
        np.testing.assert_array_equal(kept, answered)
    assert set(captured["model_version"]) == {2}
    files = platform.capture.list("api")
    host = re.escape(socket.gethostname())
    writers = {re.search(rf"-{host}-(\d+)-", f.path).group(1) for f in files}  # type: ignore[union-attr]
    assert writers == {a[1] for a in answers}  # each answering worker wrote its own files
