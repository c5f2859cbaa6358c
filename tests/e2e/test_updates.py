"""Updates without loss of service: endpoints updated and rolled back under concurrent load
against a 2-worker server; every response is a success, correct for the version that claims
to have answered, and from a config that was live at that moment."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from modelyard.bootstrap import Platform
from tests.e2e.conftest import expected

INVOKE = "/endpoints/churn-api/invocations"
# A config stays possible for this long after the next one is written: the poll interval,
# loading and warming the new models, and requests already in flight on the old ones.
PROPAGATION_S = 3.0


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
    start: float
    end: float
    served: frozenset[tuple[str, str]]  # (variant, model ref)


def _served(platform: Platform) -> frozenset[tuple[str, str]]:
    config = platform.endpoints.get("churn-api").config
    return frozenset((v.name, v.model_ref) for v in config.variants if v.weight > 0)


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
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    server = serve(workers=2)
    probe = models["x"][7:8]
    truth = {f"churn:{v}": float(expected(models, v, probe)[0]) for v in (1, 2, 3)}
    assert len(set(truth.values())) == 3, "the three versions must answer differently"

    answers: list[Answer] = []
    stop = threading.Event()
    changes = [Change(0.0, time.monotonic(), _served(platform))]
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
        time.sleep(1.0)
        for step in steps:
            start = time.monotonic()
            step()
            changes.append(Change(start, time.monotonic(), _served(platform)))
            time.sleep(2.0)
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)

    assert changes[-1].served == frozenset({("main", "churn:3")}), "rollback returned to churn:3"
    span = max(a.end for a in answers) - min(a.start for a in answers)
    assert span >= 10, f"load ran {span:.1f} s; the updates need at least 10 s of it"
    assert len(answers) > 500, f"only {len(answers)} requests were made"
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} failed responses, e.g. {failed[:3]}"
    wrong = [
        a for a in answers if a.version is None or not np.isclose(a.prediction, truth[a.version])
    ]
    assert not wrong, f"{len(wrong)} answers do not match their version, e.g. {wrong[:3]}"
    for answer in answers:
        allowed: set[tuple[str, str]] = set()
        for i, change in enumerate(changes):
            nxt = changes[i + 1] if i + 1 < len(changes) else None
            live_from = change.start
            live_until = nxt.end + PROPAGATION_S if nxt else float("inf")
            if live_from <= answer.end and live_until >= answer.start:
                allowed |= change.served
        assert (answer.variant, answer.version) in allowed, (answer, allowed)
    seen = {a.version for a in answers}
    assert seen == {"churn:1", "churn:2", "churn:3"}, f"updates never reached clients: {seen}"


def test_every_worker_converges_on_a_change(platform: Platform, serve: Any) -> None:
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    server = serve(workers=2, MODELYARD_PLAN_POLL_S="0.5")
    row = [0.1] * 30
    platform.endpoints.update("churn-api", {"main": "churn:2"})
    time.sleep(2.0)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        # New connections each time, so the kernel spreads them over both workers.
        versions = {
            httpx.post(f"{server.url}{INVOKE}", json=row).headers["x-modelyard-model-version"]
            for _ in range(60)
        }
        assert versions == {"churn:2"}, versions
        ready = http.get("/readyz").json()
        assert ready["ready"] is True and ready["failures"] == {}
