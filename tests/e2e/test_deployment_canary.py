"""An end-to-end canary under concurrent load: a real ``modelyard serve`` (two workers), a
``modelyard controller`` process, and clients sending requests all along. The new model fails
every request it gets (a synthetic error spike); the controller sees its error rate against the
old variant's over the same window and rolls all traffic back by itself. No request fails but
those the new model failed, no request reaches the new model before every worker loaded it,
and none after the rollback reached every worker."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain import Trust
from modelyard.domain.deployment_decisions import Action, Verdict
from modelyard.domain.deployments import DeploymentState
from tests.e2e.conftest import MODELYARD, N_FEATURES, Server, clean_env, free_port
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
INVOKE = "/endpoints/api/invocations"
WORKERS = 2
SPIKY = """
import numpy as np


class Model:
    def load(self, artifacts_dir):
        pass

    def predict(self, data):
        x = np.asarray(data, dtype=float)
        if (x[:, 0] > 0).any():
            raise ValueError("synthetic error spike")
        return 1.0 / (1.0 + np.exp(-x.sum(axis=1)))
"""


@dataclass
class Answer:
    start: float  # wall-clock seconds, comparable with the store's timestamps
    end: float
    status: int
    variant: str | None
    version: str | None
    body: str


def _load(url: str, row: list[float], stop: threading.Event, out: list[Answer]) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            start = time.time()
            try:
                res = http.post(INVOKE, json=[row])
            except httpx.HTTPError as exc:  # a lost request is a failure too
                out.append(Answer(start, time.time(), 0, None, None, repr(exc)))
                continue
            out.append(
                Answer(
                    start,
                    time.time(),
                    res.status_code,
                    res.headers.get("x-modelyard-variant"),
                    res.headers.get("x-modelyard-model-version"),
                    res.text[:200],
                )
            )


def _start(home: Path, tmp_path: Path, argv: list[str], name: str, **env: str) -> Any:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            env=clean_env(home, **env),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


@pytest.fixture
def server(platform: Platform, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    argv = [MODELYARD, "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(WORKERS), "--no-monitors"]
    process, log = _start(
        platform.settings.home, tmp_path, argv, "server", MODELYARD_METRICS_FLUSH_S="1"
    )
    started = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


@pytest.fixture
def controller(platform: Platform, tmp_path: Path) -> Iterator[Any]:
    argv = [MODELYARD, "controller", "--poll", "0.5"]
    process, log = _start(platform.settings.home, tmp_path, argv, "controller")
    try:
        yield process, log
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serving_everywhere(url: str, number: int) -> float:
    """Wait until every worker serves config ``number`` of ``api``; when that was seen."""
    latest: dict[int, int] = {}

    def observe() -> dict[int, int]:
        for _ in range(4 * WORKERS):
            body = httpx.get(f"{url}/endpoints", timeout=10).json()
            config = next((e["config"] for e in body["endpoints"] if e["name"] == "api"), 0)
            latest[body["worker"]] = max(latest.get(body["worker"], 0), config)
        return dict(latest)

    wait_for(
        f"all {WORKERS} workers serving config {number} (worker: config)",
        observe,
        lambda seen: len(seen) >= WORKERS and set(seen.values()) == {number},
        timeout=120,
    )
    return time.time()


def test_a_canary_with_an_error_spike_rolls_back_by_itself_under_load(
    platform: Platform, server: Server, controller: Any, tmp_path: Path
) -> None:
    code = tmp_path / "spiky"
    code.mkdir()
    (code / "model.py").write_text(SPIKY)
    calm = [[-1.0] + [0.1] * (N_FEATURES - 1)] * 3  # warm-up rows the new model answers
    platform.registry.register(
        "spiky", code, flavor="pyfunc", input_example=calm, trust=Trust(user_code=True)
    )
    platform.endpoints.create("api", {"main": "churn:1"})
    _serving_everywhere(server.url, 1)

    answers: list[Answer] = []
    stop = threading.Event()
    row = [1.0] + [0.1] * (N_FEATURES - 1)  # the new model fails on it
    clients = [
        threading.Thread(target=_load, args=(server.url, row, stop, answers)) for _ in range(4)
    ]
    for thread in clients:
        thread.start()
    try:
        wait_for("answers before the deployment", lambda: len(answers), lambda n: n >= 50)
        asked = time.time()
        started = platform.deployments.start(
            "api", {"main": "spiky:1"}, strategy="canary", canary_size=20,
            wait=timedelta(minutes=5), bake=timedelta(minutes=5), min_requests=30,
        )  # fmt: skip
        assert started.deployment is not None
        done = wait_for(
            "the deployment rolled back by the controller",
            lambda: platform.deployments.get("api"),
            lambda d: not d.state.active,
            timeout=180,
        )
        assert done.state is DeploymentState.ROLLED_BACK, (done.reason, controller[1].read_text())
        assert done.config is not None
        everywhere = _serving_everywhere(server.url, done.config)
        wait_for(
            "answers after the rollback reached every worker",
            lambda: sum(a.start >= everywhere for a in list(answers)),
            lambda n: n >= 100,
        )
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)

    steps = platform.deployments.steps(done)
    canary = steps[1].started_at.timestamp()
    lost = [a for a in answers if a.status not in (200, 424)]
    assert not lost, f"{len(lost)} requests failed otherwise, e.g. {lost[:3]}"
    spiked = [a for a in answers if a.status == 424]
    assert all(
        a.version == "spiky:1" and a.variant == "main.next" and "raised ValueError" in a.body
        for a in spiked
    ), spiked[:3]
    assert len(spiked) >= 30, "the canary got its minimum of requests"
    assert all(a.version == "churn:1" for a in answers if a.status == 200)
    assert all(a.start >= asked for a in spiked), "no traffic before the deployment"
    assert all(a.end >= canary for a in spiked), "no traffic before every worker loaded it"
    assert all(a.start <= everywhere for a in spiked), "none once the rollback was everywhere"
    assert [s.outcome for s in steps] == ["passed", "rolled back"]
    rollback = platform.deployments.decisions(done)[-1]
    assert rollback.action is Action.ROLLBACK and rollback.actor != "user"
    errors = {c.name: c for c in rollback.checks}["error_rate"]
    assert errors.verdict is Verdict.FAIL and errors.values["new_rate"] == 1.0
    assert errors.values["old_errors"] == 0 and errors.values["old_requests"] >= 30
    print(
        f"canary: {len(answers)} answers, {len(spiked)} failed by the new model; rolled back "
        f"{(rollback.at.timestamp() - canary):.1f} s after the canary step began, on "
        f"{errors.values['new_requests']} new / {errors.values['old_requests']} old requests"
    )
    reverted = platform.endpoints.get("api").config
    assert [(v.name, v.model_ref, v.weight) for v in reverted.variants] == [
        ("main", "churn:1", 1.0)
    ]
