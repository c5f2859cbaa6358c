"""Updates without loss of service: endpoints updated and rolled back under concurrent load
against a 2-worker server; every response is a success, correct for the version that claims
to have answered, and from a config that was live at that moment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import numpy as np

from modelyard.bootstrap import Platform
from tests.e2e.conftest import expected
from tests.waiting import wait_for

T = TypeVar("T")

INVOKE = "/endpoints/churn-api/invocations"
WORKERS = 2
# Answers to requests sent after a config reached every worker, awaited before the next change,
# so that every config serves load and every change happens under it.
PHASE_ANSWERS = 100


@dataclass
class Answer:
    start: float
    end: float
    status: int
    variant: str | None
    version: str | None
    prediction: float | None


@dataclass
class Change:
    start: float  # when it was asked for
    everywhere: float  # when every worker was seen serving it: the previous config's end
    served: frozenset[tuple[str, str]]  # (variant, model ref)


def _served(platform: Platform) -> frozenset[tuple[str, str]]:
    config = platform.endpoints.get("churn-api").config
    return frozenset((v.name, v.model_ref) for v in config.variants if v.weight > 0)


def _burst(url: str, path: str, send: Callable[[str], T]) -> list[T]:
    """``send`` to ``url + path`` 4 times at once, each on a new connection, so that the
    kernel hands them to different workers."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda _: send(f"{url}{path}"), range(4)))


def _wait_everywhere(url: str, number: int) -> float:
    """Wait until every worker serves config ``number`` of churn-api (their ``/endpoints``
    say so); when that was seen. Any request sent after it is answered by that config."""
    latest: dict[int, int] = {}

    def observe() -> dict[int, int]:
        for body in _burst(url, "/endpoints", lambda u: httpx.get(u, timeout=10).json()):
            config = next(e["config"] for e in body["endpoints"] if e["name"] == "churn-api")
            latest[body["worker"]] = max(latest.get(body["worker"], 0), config)
        return dict(latest)

    wait_for(
        f"all {WORKERS} workers serving config {number} (worker: config)",
        observe,
        lambda seen: len(seen) >= WORKERS and set(seen.values()) == {number},
    )
    return time.monotonic()


def _wait_load(answers: list[Answer], since: float) -> None:
    wait_for(
        f"{PHASE_ANSWERS} answers to requests sent after the config reached every worker",
        lambda: sum(a.start >= since for a in list(answers)),
        lambda count: count >= PHASE_ANSWERS,
    )


def _load(url: str, row: list[float], stop: threading.Event, out: list[Answer]) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        while not stop.is_set():
            start = time.monotonic()
            try:
                res = http.post(INVOKE, json=row)
            except httpx.HTTPError as exc:  # a lost request is a failure too
                out.append(Answer(start, time.monotonic(), 0, None, None, None))
                print("transport error", exc)
                continue
            body = res.json() if res.status_code == 200 else {}
            out.append(
                Answer(
                    start,
                    time.monotonic(),
                    res.status_code,
                    res.headers.get("x-modelyard-variant"),
                    res.headers.get("x-modelyard-model-version"),
                    body.get("predictions", [None])[0],
                )
            )


def test_updates_and_rollbacks_under_load_lose_nothing(
    platform: Platform, serve: Any, models: dict[str, Any]
) -> None:
    created = platform.endpoints.create("churn-api", {"main": "churn:1"})
    server = serve(workers=WORKERS)
    probe = models["x"][7:8]
    truth = {f"churn:{v}": float(expected(models, v, probe)[0]) for v in (1, 2, 3)}
    assert len(set(truth.values())) == 3, "the three versions must answer differently"

    answers: list[Answer] = []
    stop = threading.Event()
    changes = [Change(0.0, _wait_everywhere(server.url, created.config.number), _served(platform))]
    clients = [
        threading.Thread(target=_load, args=(server.url, probe[0].tolist(), stop, answers))
        for _ in range(4)
    ]
    for thread in clients:
        thread.start()
    steps = [
        lambda: platform.endpoints.update("churn-api", {"main": "churn:2"}),
        lambda: platform.endpoints.update(
            "churn-api", {"blue": "churn:2", "green": "churn:3"}, {"blue": 0.5, "green": 0.5}
        ),
        lambda: platform.endpoints.set_weights("churn-api", {"blue": 0.0, "green": 1.0}),
        lambda: platform.endpoints.update("churn-api", {"main": "churn:3"}),
        lambda: platform.endpoints.update("churn-api", {"main": "churn:1"}),
        lambda: platform.endpoints.rollback("churn-api"),
    ]
    try:
        _wait_load(answers, changes[0].everywhere)
        for step in steps:
            start = time.monotonic()
            number = step().config.number
            served = _served(platform)
            changes.append(Change(start, _wait_everywhere(server.url, number), served))
            _wait_load(answers, changes[-1].everywhere)
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)

    assert changes[-1].served == frozenset({("main", "churn:3")}), "rollback returned to churn:3"
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} failed responses, e.g. {failed[:3]}"
    wrong = [
        a for a in answers if a.version is None or not np.isclose(a.prediction, truth[a.version])
    ]
    assert not wrong, f"{len(wrong)} answers do not match their version, e.g. {wrong[:3]}"
    for answer in answers:
        # A config is live from when it was asked for until its successor was seen on every
        # worker: a request sent before then may still meet it (in flight, or on a worker
        # that has not swapped yet); one sent after may not.
        allowed: set[tuple[str, str]] = set()
        for i, change in enumerate(changes):
            live_until = changes[i + 1].everywhere if i + 1 < len(changes) else float("inf")
            if change.start <= answer.end and answer.start <= live_until:
                allowed |= change.served
        assert (answer.variant, answer.version) in allowed, (answer, allowed)
    seen = {a.version for a in answers}
    assert seen == {"churn:1", "churn:2", "churn:3"}, f"updates never reached clients: {seen}"


def test_every_worker_converges_on_a_change(platform: Platform, serve: Any) -> None:
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    server = serve(workers=WORKERS, MODELYARD_PLAN_POLL_S="0.5")
    row = [0.1] * 30

    def invoke(url: str) -> tuple[str, str]:
        res = httpx.post(url, json=row, timeout=10)
        assert res.status_code == 200, res.text
        return res.headers["x-modelyard-worker"], res.headers["x-modelyard-model-version"]

    platform.endpoints.update("churn-api", {"main": "churn:2"})
    latest: dict[str, str] = {}

    def observe() -> dict[str, str]:
        latest.update(_burst(server.url, INVOKE, invoke))
        return dict(latest)

    wait_for(
        f"all {WORKERS} workers answering with churn:2 (worker: version)",
        observe,
        lambda seen: len(seen) >= WORKERS and set(seen.values()) == {"churn:2"},
    )
    # Converged for good: no worker goes back to the old version.
    versions = {version for _ in range(10) for _, version in _burst(server.url, INVOKE, invoke)}
    assert versions == {"churn:2"}, versions
    with httpx.Client(base_url=server.url, timeout=10) as http:
        ready = http.get("/readyz").json()
        assert ready["ready"] is True and ready["failures"] == {}
