"""The serving half of the demo: deploy blue/green, serve in-process, send traffic."""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.table import Table

from modelyard.demo.batch_story import run_batch
from modelyard.demo.registry_story import (
    ALIAS,
    ENDPOINT,
    HOST,
    MODEL,
    READY_TIMEOUT_S,
    SEED,
    WEIGHTS,
    DemoResult,
    busy,
    run_demo,
)
from modelyard.domain import Endpoint
from modelyard.errors import CannotListen, EndpointNotFound, ModelyardError

if TYPE_CHECKING:
    import uvicorn

    from modelyard.bootstrap import Platform
    from modelyard.config import Settings


@dataclass(frozen=True)
class VariantTraffic:
    """How one variant answered the demo's requests."""

    variant: str
    model_version: str
    requests: int
    share: float  # percent of all requests
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Traffic:
    """What the demo's requests saw, per variant."""

    url: str
    requests: int
    seconds: float
    variants: tuple[VariantTraffic, ...]


def run_full_demo(
    platform: Platform,
    console: Console,
    *,
    port: int = 8080,
    requests: int = 300,
    keep_serving: bool = True,
    seed: int = SEED,
) -> Traffic:
    """The whole demo: registry (:func:`run_demo`), endpoint, server, traffic, then (with
    ``keep_serving``) serve until Ctrl-C.

    Raises:
        CannotListen: ``port`` is in use (checked first, before any training).
        ModelyardError: the server did not start or a request failed.
    """
    listener = _listen(port)  # first, so a taken port fails at once
    try:
        result = run_demo(platform, console, seed=seed)
        endpoint = deploy(platform, console, result)
        assert result.validation is not None
        rows = result.validation.to_numpy(dtype=np.float64)
        with _serving(platform.settings, listener) as (url, thread):
            with busy(console, "Starting the server and loading the models …"):
                _wait_ready(url, thread)
            console.print(f"Serving endpoint {ENDPOINT} on {url}")
            with busy(console, f"Sending {requests} requests …"):
                traffic = send_traffic(url, rows, requests, endpoint)
            console.print(traffic_table(traffic))
            for line in predictor_lines(url):
                console.print(line, markup=False)
            run_batch(platform, console, result, seed)
            if keep_serving:
                console.print(instructions(url, rows[0]), markup=False)
                _serve_until_interrupted(console, thread)
    finally:
        listener.close()
    return traffic


def deploy(platform: Platform, console: Console, result: DemoResult) -> Endpoint:
    """Put the previous production version (blue, 90%) and the new one (green, 10%) on the
    endpoint: created on a first run, updated on a later one.

    On a first run there is no previous production version, and blue serves the first
    candidate, the one the alias pointed at before it moved.
    """
    first, _ = result.versions
    blue = result.previous_production or first.version
    variants = {"blue": f"{MODEL}:{blue}", "green": f"{MODEL}@{ALIAS}"}
    endpoints = platform.endpoints
    with busy(console, f"Loading and checking the models of endpoint {ENDPOINT} …"):
        try:
            endpoints.get(ENDPOINT)
        except EndpointNotFound:
            endpoint = endpoints.create(ENDPOINT, variants, WEIGHTS)
        else:
            endpoint = endpoints.update(ENDPOINT, variants, WEIGHTS)
    config = endpoint.config
    total = sum(v.weight for v in config.variants)
    served = ", ".join(
        f"{v.name}={v.model_ref} ({100 * v.weight / total:.0f}%)" for v in config.variants
    )
    console.print(
        f"Endpoint {ENDPOINT} at config {config.number} ({config.change.value}): {served}",
        markup=False,
    )
    return endpoint


def _listen(port: int) -> socket.socket:
    """A socket listening on ``HOST:port``, handed to the server (no window for another
    process to take the port between the check and the start)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a port left in TIME_WAIT by a previous run is free to use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CannotListen(f"port {port} is in use; pass --port") from None
        raise CannotListen(f"cannot listen on {HOST}:{port}: {exc.strerror}; pass --port") from None
    return sock


@contextmanager
def _serving(settings: Settings, listener: socket.socket) -> Iterator[tuple[str, threading.Thread]]:
    """Run the real serving app (uvicorn) in a background thread of this process; stop it on
    leaving. Yields the server's URL and its thread."""
    import uvicorn

    from modelyard.bootstrap import serving_app

    host, port = listener.getsockname()[:2]
    server = uvicorn.Server(
        uvicorn.Config(
            serving_app(settings),
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="modelyard-demo", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{port}", thread
    finally:
        _stop(server, thread)


def _stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(15)
    if thread.is_alive():  # a request that would not finish: stop without waiting for it
        server.force_exit = True
        thread.join(5)


def predictor_lines(url: str) -> list[str]:
    """What predicted for each variant, as the server says (``GET /endpoints``): the compiled
    tree ensemble or the native library, why, and what one row costs."""
    import httpx

    described = httpx.get(f"{url}/endpoints", timeout=5.0).json()
    lines = []
    for endpoint in described["endpoints"]:
        for v in endpoint["variants"]:
            p = v["predictor"]
            cost = ""
            if p.get("row_us") is not None and p.get("native_row_us") is not None:
                cost = f" · {p['row_us']:.0f} µs/row (native {p['native_row_us']:.0f} µs)"
            lines.append(f"Predictor of {v['name']} ({v['model']}): {p['reason']}{cost}")
    return lines


def _wait_ready(url: str, thread: threading.Thread, timeout: float = READY_TIMEOUT_S) -> None:
    """Wait until ``GET /ping`` answers 200: every model loaded and warmed.

    Raises:
        ModelyardError: the server stopped, or was not ready within ``timeout`` seconds.
    """
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=2.0) as client:
        while True:
            if not thread.is_alive():
                raise ModelyardError(f"the demo server on {url} stopped while starting")
            try:
                if client.get("/ping").status_code == 200:
                    return
                why = client.get("/readyz").text
            except httpx.TransportError as exc:
                why = str(exc) or type(exc).__name__
            if time.monotonic() > deadline:
                raise ModelyardError(
                    f"the demo server on {url} was not ready after {timeout:g} s: {why}"
                )
            time.sleep(0.05)


def send_traffic(url: str, rows: np.ndarray, count: int, endpoint: Endpoint) -> Traffic:
    """POST ``count`` single rows (cycling through ``rows``) to the endpoint, one at a time,
    and count which variant answered each, from the ``X-Modelyard-Variant`` header.

    Raises:
        ModelyardError: a request did not get a 200 answer.
    """
    import httpx

    path = f"/endpoints/{ENDPOINT}/invocations"
    latencies: dict[str, list[float]] = {v.name: [] for v in endpoint.config.variants}
    versions = {v.name: v.model_ref for v in endpoint.config.variants}
    started = time.perf_counter()
    with httpx.Client(
        base_url=url, timeout=30.0, headers={"content-type": "application/json"}
    ) as client:
        for i in range(count):
            body = json.dumps(rows[i % len(rows)].tolist())
            sent = time.perf_counter()
            try:
                response = client.post(path, content=body)
            except httpx.TransportError as exc:
                raise ModelyardError(f"request {i + 1} to {url}{path} failed: {exc}") from None
            elapsed_ms = (time.perf_counter() - sent) * 1000.0
            if response.status_code != 200:
                raise ModelyardError(
                    f"request {i + 1} to {url}{path} got HTTP {response.status_code}: "
                    f"{response.text[:300]}"
                )
            variant = response.headers.get("x-modelyard-variant", "?")
            versions[variant] = response.headers.get("x-modelyard-model-version", "?")
            latencies.setdefault(variant, []).append(elapsed_ms)
    seconds = time.perf_counter() - started
    return Traffic(
        url=url,
        requests=count,
        seconds=seconds,
        variants=tuple(
            VariantTraffic(
                variant=name,
                model_version=versions[name],
                requests=len(times),
                share=100.0 * len(times) / count,
                p50_ms=float(np.percentile(times, 50)) if times else None,
                p99_ms=float(np.percentile(times, 99)) if times else None,
            )
            for name, times in latencies.items()
        ),
    )


def traffic_table(traffic: Traffic) -> Table:
    """Per variant: model version, requests, share of all requests, p50 and p99 latency."""
    table = Table(
        title=f"Traffic: {traffic.requests} requests to endpoint {ENDPOINT} "
        f"in {traffic.seconds:.1f} s"
    )
    table.add_column("variant", style="bold")
    table.add_column("model version")
    table.add_column("requests", justify="right")
    table.add_column("share %", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    for v in traffic.variants:
        table.add_row(
            v.variant,
            v.model_version,
            str(v.requests),
            f"{v.share:.1f}",
            f"{v.p50_ms:.2f}" if v.p50_ms is not None else "-",
            f"{v.p99_ms:.2f}" if v.p99_ms is not None else "-",
        )
    return table


def instructions(url: str, row: np.ndarray) -> str:
    """How to call the endpoint by hand, with one validation row as the body."""
    values = [float(x) for x in row]
    as_json = json.dumps(values)
    as_csv = ",".join(repr(x) for x in values)
    target = f"{url}/endpoints/{ENDPOINT}/invocations"
    url_option = "" if url == "http://127.0.0.1:8080" else f" --url {url}"
    return "\n".join(
        [
            f"Serving {url} until Ctrl-C. Try (-i shows the X-Modelyard-Variant header):",
            f"  curl -i {target} -H 'Content-Type: application/json' -d '{as_json}'",
            f"  curl -i {target} -H 'Content-Type: text/csv' --data-binary '{as_csv}'",
            f"  modelyard invoke {ENDPOINT}{url_option} --data '{as_json}'",
            f"  modelyard invoke {ENDPOINT}{url_option} --variant green --data '{as_json}'",
        ]
    )


def _serve_until_interrupted(console: Console, thread: threading.Thread) -> None:
    """Block until Ctrl-C (a clean end: the caller stops the server) or until the server dies.

    Raises:
        ModelyardError: the server stopped by itself.
    """
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        console.print("\nStopping the server …")
        return
    raise ModelyardError("the demo server stopped unexpectedly")
