"""Load for the metrics end-to-end tests: requests from several clients at once on short-lived
connections until both workers of a ``modelyard serve --workers 2`` have answered some, with
what each client saw; and a scrape of ``GET /metrics`` on a connection of its own."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import numpy as np
import orjson

from tests.e2e.conftest import Server
from tests.serving.metrics_support import Samples, parse

INVOKE = "/endpoints/churn-api/invocations"
CLIENTS = 4
PER_CONNECTION = 10
JSON = {"content-type": "application/json"}


def scrape(server: Server) -> tuple[str, Samples]:
    """One scrape on a new connection: the worker that answered, and what it said."""
    answer = httpx.get(f"{server.url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-modelyard-worker"], parse(answer.text)


@dataclass
class Sent:
    """What the clients sent and saw: each request's rows and latency, the workers that
    answered."""

    rows: list[np.ndarray] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    workers: set[str] = field(default_factory=set)


def send(server: Server, pool: list[np.ndarray], at_least: int) -> Sent:
    """POST requests (the next rows of ``pool`` each) from several clients at once, each on
    short-lived connections, until at least ``at_least`` were answered by both workers
    together and each worker answered some (the kernel hands connections to whichever worker
    accepts first, which on a busy machine can be the same one for a while)."""
    sent = Sent()
    lock = threading.Lock()
    turns = itertools.count()

    def client() -> None:
        while True:
            with lock:
                if len(sent.rows) >= at_least and len(sent.workers) == 2:
                    return
            with server.client() as http:
                for _ in range(PER_CONNECTION):
                    index = next(turns)
                    if index >= len(pool):
                        return
                    body = orjson.dumps({"instances": pool[index].tolist()})
                    began = time.perf_counter()
                    answer = http.post(INVOKE, content=body, headers=JSON)
                    took = time.perf_counter() - began
                    assert answer.status_code == 200, answer.text
                    with lock:
                        sent.rows.append(pool[index])
                        sent.latencies.append(took)
                        sent.workers.add(answer.headers["x-modelyard-worker"])

    with ThreadPoolExecutor(CLIENTS) as threads:
        for done in [threads.submit(client) for _ in range(CLIENTS)]:
            done.result()
    assert len(sent.workers) == 2, f"only worker {sent.workers} answered {len(pool)} requests"
    return sent
