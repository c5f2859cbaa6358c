"""A real Prometheus scrapes a real ``modelyard serve --workers 2`` every second, and its query API
answers what was sent: request and error counts by status, rows per feature, two live workers,
and a median latency within what the clients measured.

Prometheus is the Debian package's binary (``apt-get install prometheus``; ``.ci/run`` installs
it), started here on a free 127.0.0.1 port with its own configuration and data folder. Without
it the test is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain import CaptureConfig
from modelyard.domain.metric_stats import LATENCY_BOUNDS_S
from tests.e2e.conftest import Server, free_port
from tests.e2e.metrics_load import INVOKE, send
from tests.waiting import wait_for

IN_CI = os.environ.get("CI", "").lower() == "true"
REQUESTS = 60
SELECT = 'endpoint="churn-api",protocol="sagemaker"'


def debian_binary(name: str) -> str:
    """A program of Debian's ``prometheus`` package (``prometheus``, ``promtool``)."""
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        message = f"{name} is not installed (apt-get install prometheus)"
        if IN_CI:
            pytest.fail(f"{message}; it is required under CI=true")
        pytest.skip(message)
    return found


def prometheus_binary() -> str:
    return debian_binary("prometheus")


class Prometheus:
    """A Prometheus process scraping one target every second."""

    def __init__(self, folder: Path, target: str) -> None:
        folder.mkdir()
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: modelyard\n"
            "    metrics_path: /metrics\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = folder / "prometheus.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` evaluates to now."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, promql: str) -> float | None:
        """The value of a one-element vector (None: no series yet)."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], Prometheus]]:
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        started.append(Prometheus(tmp_path / f"prometheus-{len(started)}", target))
        wait_for("prometheus ready", started[-1].ready)
        return started[-1]

    yield start
    for one in started:
        one.stop()


def test_prometheus_sees_what_was_sent(
    platform: Platform,
    serve: Callable[..., Server],
    prometheus: Callable[[str], Prometheus],
    models: dict[str, Any],
) -> None:
    prometheus_binary()  # skip (or fail under CI) before starting anything
    platform.endpoints.create("churn-api", {"main": "churn:2"})
    server = serve(workers=2)
    prom = prometheus(server.url.removeprefix("http://"))
    wait_for("the server scraped", lambda: prom.scalar('up{job="modelyard"}'), lambda v: v == 1)
    rng = np.random.default_rng(4)
    pool = [models["x"][rng.integers(0, 3000, size=2)] for _ in range(2000)]
    sent = send(server, pool, REQUESTS)
    n, latencies = len(sent.rows), sent.latencies
    with server.client() as client:
        for _ in range(4):
            answer = client.post(INVOKE, content=b"{", headers={"content-type": "application/json"})
            assert answer.status_code == 400

    wait_for(
        "Prometheus to count every request",
        lambda: prom.scalar(f"sum(modelyard_requests_total{{{SELECT}}})"),
        lambda v: v == n + 4,
    )
    errors = prom.query(f"sum by (status, code) (modelyard_request_errors_total{{{SELECT}}})")
    assert [(e["metric"], e["value"][1]) for e in errors] == [
        ({"status": "400", "code": "invalid_payload"}, "4")
    ]
    features = prom.query('modelyard_input_values_total{endpoint="churn-api",feature=~"f0|f29"}')
    assert sorted((f["metric"]["feature"], f["value"][1]) for f in features) == [
        ("f0", str(2 * n)),
        ("f29", str(2 * n)),
    ]
    assert prom.scalar("modelyard_workers") == 2
    median = prom.scalar(
        "histogram_quantile(0.5, sum by (le) "
        f"(modelyard_request_duration_seconds_bucket{{{SELECT}}}))"
    )
    # The server's latencies are within the clients'; Prometheus interpolates inside a bucket,
    # so its median is at most the bound of the bucket holding the slowest client latency.
    ceiling = next((b for b in LATENCY_BOUNDS_S if b >= max(latencies)), float("inf"))
    assert median is not None and 0 < median <= ceiling
    mean_f0 = prom.scalar(
        'sum(modelyard_input_value_sum{feature="f0"})'
        ' / sum(modelyard_input_value_count{feature="f0"})'
    )
    assert mean_f0 == pytest.approx(float(np.concatenate(sent.rows)[:, 0].mean()), rel=1e-9)


def test_every_family_passes_promtools_naming_lint(
    platform: Platform, serve: Callable[..., Server], models: dict[str, Any]
) -> None:
    """``promtool check metrics`` (the exposition format and Prometheus's naming conventions)
    finds nothing in a scrape that holds every kind of family: capture, a shadow, a split,
    an error, V2 requests, per-feature statistics."""
    promtool = debian_binary("promtool")
    everything = CaptureConfig.parse(100)
    platform.endpoints.create(
        "churn-api",
        {"main": "churn:2", "canary": "churn:3", "trial": "churn:1"},
        weights={"main": 50, "canary": 50},
        shadows={"trial": 100},
        capture={"main": everything, "trial": everything},
    )
    server = serve(workers=2)
    rng = np.random.default_rng(5)
    pool = [models["x"][rng.integers(0, 3000, size=2)] for _ in range(500)]
    sent = send(server, pool, 40)
    v2 = {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": [0.5] * 30}]}
    with server.client() as client:
        assert client.post("/v2/models/churn-api/infer", json=v2).status_code == 200
        bad = client.post(INVOKE, content=b"{", headers={"content-type": "application/json"})
        assert bad.status_code == 400

    def scrape() -> str:
        return httpx.get(f"{server.url}/metrics", timeout=10).text

    def complete(text: str) -> bool:
        counts = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("modelyard_requests_total{")
        ]
        shadowed = 'modelyard_requests_total{endpoint="churn-api",model_version="1"' in text
        return shadowed and sum(counts) >= len(sent.rows) + 2

    text = wait_for("every request in the metrics", scrape, complete)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
