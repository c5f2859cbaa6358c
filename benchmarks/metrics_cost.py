"""What the metrics cost per request, in process: the serving app with metrics on against off.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.

It builds the serving benchmark's model (100-tree depth-6 XGBoost, 30 features), deploys it on
an endpoint, and calls the serving ASGI app directly (no sockets, no HTTP parser) with the
one-row JSON body of ``benchmarks/serving.py``. What the metrics cost is measured three ways:

- the request path, in isolation: the core's observer (choosing a variant and releasing it,
  with the metrics observer against without) and the predict-stack wrapper (around an
  instant inner handler, against the inner handler alone), in microseconds per request;
- the drain thread: the CPU time the worker's drains report (``modelyard_metrics_drain_cpu_
  seconds_total``) per request served, at 1 caller and at 64 concurrent callers;
- end to end, the app with metrics on against off, alternating, ``--rounds`` times: one request
  at a time (microseconds per request) and 64 concurrent callers (requests/s), with the
  process's CPU microseconds per request. On a shared machine these move by more than the
  metrics cost; the first two are the numbers to read.

The sum of the first two is set against the serving benchmark's measured budget
(``--rps-1``, ``--rps-64``: ~2,800 requests/s at 1 connection and ~7,900 at 64, on 2 cores):
5 % of a request's time at 1 connection, 5 % of its CPU share at 64.

Run (from the repository root)::

    .venv/bin/python benchmarks/metrics_cost.py [--requests 4000] [--rounds 5] [--out FILE]
        [--rps-1 2800] [--rps-64 7900] [--cores 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd


def registered(home: Path) -> tuple[Any, np.ndarray]:
    """A platform on ``home`` with the benchmark model registered as ``bench:1`` (XGBoost, 100
    trees, depth 6, 30 features, as serving.py's), and the model's data."""
    import xgboost
    from sklearn.datasets import make_classification

    from modelyard.bootstrap import build
    from modelyard.config import load_settings

    x, y = make_classification(n_samples=5000, n_features=30, n_informative=12, random_state=42)
    names = [f"f{i}" for i in range(30)]
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "seed": 42},
        xgboost.DMatrix(x, label=y, feature_names=names),
        num_boost_round=100,
    )
    platform = build(load_settings({}, home=home))
    example = pd.DataFrame(x[:20], columns=names)
    platform.registry.register("bench", booster, flavor="xgboost", input_example=example)
    return platform, x


def body_of(x: np.ndarray) -> bytes:
    """The one-row request body: the first row of ``x``."""
    return orjson.dumps({"instances": [[round(float(v), 6) for v in x[0]]]})


def build_home(home: Path) -> bytes:
    """A store with endpoint ``bench`` serving the benchmark model; the request body."""
    platform, x = registered(home)
    platform.endpoints.create("bench", {"main": "bench:1"})
    platform.close()
    return body_of(x)


class App:
    """The serving app with its lifespan run, called directly as an ASGI app."""

    def __init__(self, app: Any, body: bytes) -> None:
        self.app = app
        self.body = body
        self.scope = {
            "type": "http",
            "method": "POST",
            "path": "/endpoints/bench/invocations",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        self._inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._sent: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def _life_send(self, message: dict[str, Any]) -> None:
        self._sent.append(message["type"])

    async def _until(self, kind: str) -> None:
        while kind not in self._sent:
            await asyncio.sleep(0.01)

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self.app({"type": "lifespan"}, self._inbox.get, self._life_send)
        )
        await self._inbox.put({"type": "lifespan.startup"})
        await self._until("lifespan.startup.complete")

    async def stop(self) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._until("lifespan.shutdown.complete")
        assert self._task is not None
        await self._task
        gc.unfreeze()

    async def call(self) -> None:
        status = 0
        body = self.body

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(self.scope, receive, send)
        if status != 200:
            raise RuntimeError(f"the app answered {status}")


async def sequential(app: App, n: int) -> tuple[float, float]:
    """Microseconds of wall and CPU time per request, one request at a time."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await app.call()
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


async def concurrent(app: App, n: int, callers: int = 64) -> tuple[float, float]:
    """Requests per second and CPU microseconds per request with ``callers`` at once."""
    each = max(1, n // callers)

    async def caller() -> None:
        for _ in range(each):
            await app.call()

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(callers)))
    total = each * callers
    return total / (time.perf_counter() - wall), (time.process_time() - cpu) / total * 1e6


def best_us(run: Any, calls: int, repeats: int = 9) -> float:
    """The best over ``repeats`` of the mean microseconds of ``run(calls)`` (the run least
    disturbed by whatever else the machine does)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run(calls)
        times.append((time.perf_counter() - began) / calls * 1e6)
    return min(times)


async def request_path(app: App, calls: int = 20000) -> dict[str, float]:
    """Microseconds the metrics add on the request path: the observer and the wrapper."""
    from modelyard.serving.dataplane import DataPlane
    from modelyard.serving.metrics import Metrics
    from modelyard.serving.stack import Call, RequestMeta

    core = app.app.app.core  # CorsMiddleware -> ServingApp -> its DataPlane
    plain = DataPlane(core.deployer, core._handler)
    observed = DataPlane(core.deployer, core._handler, core._observer)
    meta = RequestMeta(endpoint="bench", inference_id="0" * 32)

    def leases(dataplane: DataPlane) -> Any:
        def run(n: int) -> None:
            for _ in range(n):
                with dataplane.choose(meta):
                    pass

        return run

    observer_us = best_us(leases(observed), calls) - best_us(leases(plain), calls)
    core._observer.outcomes.take()
    with tempfile.TemporaryDirectory() as folder:
        metrics = Metrics(Path(folder))
        answer = np.zeros(1)

        async def inner(call: Call) -> np.ndarray:
            return answer

        wrapped = metrics.wrap(inner)
        with core.choose(meta) as lease:
            call = Call(meta, lease.selection, np.zeros((1, 30)))

        async def loop(handler: Any, n: int) -> float:
            began = time.perf_counter()
            for _ in range(n):
                await handler(call)
            return (time.perf_counter() - began) / n * 1e6

        bare = min([await loop(inner, calls) for _ in range(9)])
        metrics.calls.take()
        layered = []
        for _ in range(9):
            layered.append(await loop(wrapped, calls))
            metrics.calls.take()
        wrapper_us = min(layered) - bare
    core._observer.outcomes.take()
    return {"observer_us": observer_us, "wrapper_us": wrapper_us}


async def drain_cpu(app: App) -> tuple[float, float]:
    """The drains' CPU seconds and the requests counted, from the app's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message["body"])

    await app.app(
        {"type": "http", "method": "GET", "path": "/metrics", "headers": []}, receive, send
    )
    found = {"modelyard_metrics_drain_cpu_seconds_total": 0.0, "modelyard_requests_total": 0.0}
    for family in text_string_to_metric_families(b"".join(chunks).decode()):
        for sample in family.samples:
            if sample.name in found:
                found[sample.name] += sample.value
    return found["modelyard_metrics_drain_cpu_seconds_total"], found["modelyard_requests_total"]


async def drained(app: App, requests: float) -> tuple[float, float]:
    """Wait for the drain to count ``requests``; then what it spent."""
    while True:
        spent, counted = await drain_cpu(app)
        if counted >= requests:
            return spent, counted
        await asyncio.sleep(0.05)


async def measure(home: Path, body: bytes, requests: int, rounds: int) -> dict[str, Any]:
    from modelyard.bootstrap import serving_app
    from modelyard.config import load_settings

    runs: dict[str, dict[str, list[float]]] = {
        mode: {"us_1": [], "cpu_us_1": [], "rps_64": [], "cpu_us_64": []} for mode in ("off", "on")
    }
    drains: dict[str, list[float]] = {"drain_us_1": [], "drain_us_64": []}
    path: dict[str, list[float]] = {"observer_us": [], "wrapper_us": []}
    for _ in range(rounds):
        for mode in ("off", "on"):
            settings = load_settings({}, home=home, metrics=(mode == "on"))
            app = App(serving_app(settings), body)
            await app.start()
            try:
                for _ in range(200):  # warm-up
                    await app.call()
                if mode == "on":
                    # The warm-up counted first: request_path discards what its observer
                    # records, and a drain takes the buffers on the event loop, which
                    # request_path holds, so it would discard the warm-up's outcomes too.
                    await drained(app, 200)
                    for key, spent in (await request_path(app)).items():
                        path[key].append(spent)
                    before, counted = await drained(app, 200)
                us, cpu = await sequential(app, requests)
                if mode == "on":
                    after, now_counted = await drained(app, counted + requests)
                    drains["drain_us_1"].append((after - before) / requests * 1e6)
                    before, counted = after, now_counted
                rps, cpu64 = await concurrent(app, requests)
                if mode == "on":
                    served = requests // 64 * 64
                    after, _ = await drained(app, counted + served)
                    drains["drain_us_64"].append((after - before) / served * 1e6)
            finally:
                await app.stop()
            measured = {"us_1": us, "cpu_us_1": cpu, "rps_64": rps, "cpu_us_64": cpu64}
            for key, value in measured.items():
                runs[mode][key].append(value)
            print(f"  metrics {mode}: 1 caller {us:7.1f} us/request, 64 callers {rps:8.0f} rps")
    medians = {mode: {k: statistics.median(v) for k, v in r.items()} for mode, r in runs.items()}
    off, on = medians["off"], medians["on"]
    parts = {k: statistics.median(v) for k, v in {**path, **drains}.items()}
    return {
        "runs": runs,
        "medians": medians,
        "parts": parts,
        "parts_runs": {**path, **drains},
        "cost": {
            "us_per_request_1": on["us_1"] - off["us_1"],
            "cpu_us_per_request_1": on["cpu_us_1"] - off["cpu_us_1"],
            "throughput_change_1": off["us_1"] / on["us_1"] - 1.0,
            "throughput_change_64": on["rps_64"] / off["rps_64"] - 1.0,
            "cpu_us_per_request_64": on["cpu_us_64"] - off["cpu_us_64"],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rps-1", type=float, default=2800.0, help="served at 1 connection")
    parser.add_argument("--rps-64", type=float, default=7900.0, help="served at 64 connections")
    parser.add_argument("--cores", type=int, default=2, help="cores those were measured on")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelyard-metrics-cost-") as work:
        home = Path(work) / "home"
        body = build_home(home)
        result = asyncio.run(measure(home, body, args.requests, args.rounds))
    result["parameters"] = {"requests": args.requests, "rounds": args.rounds}
    parts = result["parts"]
    path_us = parts["observer_us"] + parts["wrapper_us"]
    budget_1 = 1e6 / args.rps_1  # a request's time at 1 connection
    budget_64 = 1e6 * args.cores / args.rps_64  # a request's CPU share at 64 (upper bound)
    result["share"] = {
        "at_1": (path_us + parts["drain_us_1"]) / budget_1,
        "at_64": (path_us + parts["drain_us_64"]) / budget_64,
    }
    print(
        f"request path: observer {parts['observer_us']:.2f} us + wrapper "
        f"{parts['wrapper_us']:.2f} us; drain thread: {parts['drain_us_1']:.2f} CPU us/request "
        f"at 1 caller, {parts['drain_us_64']:.2f} at 64"
    )
    print(
        f"share of a request: {result['share']['at_1']:.2%} at 1 connection "
        f"(of {budget_1:.0f} us), {result['share']['at_64']:.2%} at 64 (of {budget_64:.0f} CPU us)"
    )
    cost = result["cost"]
    print(
        f"metrics cost: {cost['us_per_request_1']:+.1f} us/request at 1 caller "
        f"({cost['throughput_change_1']:+.1%} throughput, {cost['cpu_us_per_request_1']:+.1f} "
        f"CPU us), {cost['throughput_change_64']:+.1%} throughput at 64 callers "
        f"({cost['cpu_us_per_request_64']:+.1f} CPU us/request)"
    )
    if args.out is not None:
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
