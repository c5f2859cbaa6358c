"""The servers and series of ``v2_serving.py``: start each server, check each route's answer.

A series is one route of one server driven by one load generator. A series is measured only
when its route answered the model's prediction; otherwise it is listed with the reason in
``skipped_series`` (for instance while the V2 adapters did not exist yet).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import h2load_grpc
import mlserver_side
import modelyard_side
import orjson
import serving
import v2_serving_report as report_mod
from serverproc import BenchmarkError, Server, ServerFailed, free_port, http_request, running_server

WORKERS = 2
CORE_COMMIT = "329b317"
CURRENT = "modelyard"  # the working tree, started as CORE_COMMIT's server is (no gRPC)
CURRENT_GRPC = "modelyard+grpc"  # the working tree, started with --grpc-port
V2_INPUT = "input-0"
READY_TIMEOUT_S = 300.0  # MLServer takes a minute to start its workers on a busy 2-core machine
GRPC_READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Series:
    """One thing measured: a route of a server, driven by one load generator."""

    name: str
    server: str  # key of the running server
    route: str  # "sagemaker", "v2-rest" or "v2-grpc"
    client: str  # "wrk", "h2load" or "python-grpc"
    url: str  # for wrk: the URL; for h2load: http://host:port; for python-grpc: host:port
    body: bytes = b""
    grpc_request: h2load_grpc.GrpcRequest | None = None
    model: str = ""

    def record(self) -> dict[str, Any]:
        """The series as the JSON states it."""
        return {
            "name": self.name,
            "server": self.server,
            "route": self.route,
            "client": self.client,
            "url": self.url,
            "model": self.model or None,
        }


@dataclass
class Collected:
    """Everything measured so far (kept when the run is interrupted)."""

    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    runs: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False

    def server(self, name: str) -> dict[str, Any]:
        """The JSON record of one server, created on first use."""
        return self.servers.setdefault(name, {"answers": {}, "failures": []})


@dataclass(frozen=True)
class Requests:
    """The one row and its request bodies."""

    row: list[float]
    sagemaker: bytes
    v2: bytes
    expected: float


def build_requests(assets: serving.Assets) -> Requests:
    """The same row as ``serving.py`` sends, as a SageMaker and as a V2 JSON body."""
    row = orjson.loads(assets.body)["instances"][0]
    v2 = {"inputs": [{"name": V2_INPUT, "shape": [1, len(row)], "datatype": "FP64", "data": row}]}
    return Requests(row, assets.body, orjson.dumps(v2), assets.expected)


# --------------------------------------------------------------------------------------------
# Checking answers


def _first_number(value: Any) -> float | None:
    """The first number in nested lists, or None."""
    while isinstance(value, list) and value:
        value = value[0]
    return float(value) if isinstance(value, int | float) else None


def check_v2_rest(url: str, body: bytes, expected: float) -> dict[str, Any]:
    """POST a V2 request once; fail unless it answers 200 with the model's prediction."""
    status, answer = http_request(url, body)
    if status != 200:
        raise ServerFailed(f"POST {url} answered {status}: {answer[:300]!r}")
    try:
        outputs = orjson.loads(answer).get("outputs") or [{}]
        prediction = _first_number(outputs[0].get("data"))
    except (orjson.JSONDecodeError, AttributeError):
        prediction = None
    matches = prediction is not None and abs(prediction - expected) <= serving.PREDICTION_TOLERANCE
    return {
        "status": status,
        "body": answer[:300].decode(errors="replace"),
        "prediction": prediction,
        "expected": expected,
        "matches_model": matches,
    }


def wait_grpc(target: str, model: str, row: list[float]) -> h2load_grpc.GrpcRequest:
    """Probe the gRPC port until it answers the request (the HTTP side may be ready first)."""
    deadline = time.monotonic() + GRPC_READY_TIMEOUT_S
    while True:
        try:
            return h2load_grpc.probe(target, model, row)
        except grpc.RpcError as exc:
            if time.monotonic() >= deadline:
                raise ServerFailed(f"gRPC {target} did not answer: {exc}") from exc
            time.sleep(0.5)


def check_grpc(request: h2load_grpc.GrpcRequest, expected: float) -> dict[str, Any]:
    """The gRPC probe's answer, against the model's prediction."""
    matches = (
        request.prediction is not None
        and abs(request.prediction - expected) <= serving.PREDICTION_TOLERANCE
    )
    return {
        "prediction": request.prediction,
        "expected": expected,
        "matches_model": matches,
        "answer_bytes": request.answer_bytes,
    }


# --------------------------------------------------------------------------------------------
# Starting the servers


def two_ports() -> tuple[int, int]:
    """Two different free ports (two calls of ``free_port`` may return the same one)."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def _start(
    stack: ExitStack, collected: Collected, name: str, launch: serving.Launch, workdir: Path
) -> Server:
    """Start a server under ``stack`` (so it is stopped on leaving) and remember its pid."""
    began = time.monotonic()
    server = stack.enter_context(
        running_server(
            launch.argv,
            env=launch.env,
            log_path=workdir / f"{name}.log",
            ready=launch.ready,
            ready_timeout_s=READY_TIMEOUT_S,
        )
    )
    collected.pids[name] = server.pid
    collected.server(name)["ready_after_s"] = time.monotonic() - began
    print(f"{name} is up after {time.monotonic() - began:.0f} s (pid {server.pid})", flush=True)
    return server


def _add_series(collected: Collected, series: Series, check: Callable[[], dict]) -> None:
    """Check a series' answer; measure it only when the check passes."""
    try:
        collected.server(series.server)["answers"][series.name] = check()
    except (BenchmarkError, OSError, grpc.RpcError) as exc:
        collected.skipped[series.name] = str(exc)
        print(f"skipping {series.name}: {exc}", file=sys.stderr, flush=True)
        return
    collected.series.append(series)


def _current_launcher(
    assets: serving.Assets, collected: Collected, name: str, label: str | None
) -> tuple[serving.Launcher, dict[str, Any]]:
    """The working tree's modelyard, prepared on its own home (``label``), and its record."""
    record = collected.server(name)
    launcher = modelyard_side.prepare_current(assets, label)
    record.update(
        details=launcher.details,
        v2_sources=modelyard_side.v2_sources(),
        **modelyard_side.code_identity(launcher),
    )
    return launcher, record


def start_current(
    stack: ExitStack, assets: serving.Assets, req: Requests, collected: Collected
) -> None:
    """The working tree's modelyard with the flags of ``CORE_COMMIT``'s server (no
    ``--grpc-port``): the SageMaker route and V2 REST, compared with each other (same server)
    and the SageMaker route with ``CORE_COMMIT``'s (same flags)."""
    name = CURRENT
    launcher, record = _current_launcher(assets, collected, name, None)
    launch = launcher.make(free_port(), WORKERS)
    record["argv"] = launch.argv
    _start(stack, collected, name, launch, assets.workdir)
    record["error_shape"] = modelyard_side.error_shape(launch.invoke_url)
    sagemaker = Series(
        report_mod.SAGEMAKER, name, "sagemaker", "wrk", launch.invoke_url, req.sagemaker
    )
    _add_series(
        collected, sagemaker, partial(serving.check_answer, launch, req.sagemaker, req.expected)
    )
    model = serving.MODELYARD_ENDPOINT
    v2_url = launch.invoke_url.split("/endpoints/")[0] + f"/v2/models/{model}/infer"
    v2 = Series(report_mod.V2_REST, name, "v2-rest", "wrk", v2_url, req.v2, model=model)
    if record["v2_sources"]["rest"]:
        _add_series(collected, v2, partial(check_v2_rest, v2_url, req.v2, req.expected))
    else:
        collected.skipped[v2.name] = f"{modelyard_side.V2_SOURCES['rest']} does not exist yet"


def start_current_grpc(
    stack: ExitStack, assets: serving.Assets, req: Requests, collected: Collected
) -> None:
    """The working tree's modelyard started with ``--grpc-port`` (a grpc.aio server in every
    worker's event loop): V2 gRPC, and the SageMaker route again, so that what enabling gRPC
    costs an HTTP request is measured (against ``start_current``'s server)."""
    name = CURRENT_GRPC
    grpc_names = (report_mod.SAGEMAKER_GRPC, report_mod.GRPC_H2LOAD, report_mod.GRPC_PYTHON)
    launcher, record = _current_launcher(assets, collected, name, "home-grpc")
    has_grpc = bool(record["v2_sources"]["grpc"]) and modelyard_side.serve_has_option(
        launcher, "--grpc-port"
    )
    record["grpc_option"] = has_grpc
    if not has_grpc:
        for series_name in grpc_names:
            collected.skipped[series_name] = "modelyard serve has no --grpc-port yet"
        return
    http_port, grpc_port = two_ports()
    launch = modelyard_side.with_grpc(launcher.make(http_port, WORKERS), grpc_port)
    record["argv"] = launch.argv
    _start(stack, collected, name, launch, assets.workdir)
    sagemaker = Series(
        report_mod.SAGEMAKER_GRPC, name, "sagemaker", "wrk", launch.invoke_url, req.sagemaker
    )
    _add_series(
        collected, sagemaker, partial(serving.check_answer, launch, req.sagemaker, req.expected)
    )
    model = serving.MODELYARD_ENDPOINT
    target = f"127.0.0.1:{grpc_port}"
    try:
        probe = wait_grpc(target, model, req.row)
    except ServerFailed as exc:
        for series_name in grpc_names[1:]:
            collected.skipped[series_name] = str(exc)
        return
    check = partial(check_grpc, probe, req.expected)
    _add_series(
        collected,
        Series(
            report_mod.GRPC_H2LOAD,
            name,
            "v2-grpc",
            "h2load",
            f"http://{target}",
            grpc_request=probe,
            model=model,
        ),
        check,
    )
    _add_series(
        collected,
        Series(report_mod.GRPC_PYTHON, name, "v2-grpc", "python-grpc", target, model=model),
        check,
    )


def start_core_before(
    stack: ExitStack, assets: serving.Assets, req: Requests, collected: Collected
) -> None:
    """modelyard at ``CORE_COMMIT``, from a worktree, SageMaker route only."""
    name = f"modelyard@{CORE_COMMIT}"
    record = collected.server(name)
    tree = stack.enter_context(modelyard_side.worktree(CORE_COMMIT, assets.workdir))
    launcher = modelyard_side.prepare_at(
        assets, tree / "src", f"home-{CORE_COMMIT}", modelyard_side.GC_FREEZE_SITE
    )
    record.update(
        details=launcher.details, commit=CORE_COMMIT, **modelyard_side.code_identity(launcher)
    )
    launch = launcher.make(free_port(), WORKERS)
    record["argv"] = launch.argv
    server = _start(stack, collected, name, launch, assets.workdir)
    # Its workers freeze their startup heap as the current code does (GC_FREEZE_SITE); the
    # marker is printed after startup, so it may trail the ready check by a moment.
    deadline = time.monotonic() + GRPC_READY_TIMEOUT_S
    while (frozen := modelyard_side.gc_frozen_workers(server.log_path)) < WORKERS:
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    record["gc_frozen_workers"] = frozen
    if frozen < WORKERS:
        print(f"{name}: only {frozen} of {WORKERS} workers froze their heap", file=sys.stderr)
    record["error_shape"] = modelyard_side.error_shape(launch.invoke_url)
    series = Series(
        report_mod.CORE_BEFORE, name, "sagemaker", "wrk", launch.invoke_url, req.sagemaker
    )
    _add_series(
        collected, series, partial(serving.check_answer, launch, req.sagemaker, req.expected)
    )


def start_mlserver(
    stack: ExitStack,
    assets: serving.Assets,
    req: Requests,
    collected: Collected,
    venv: Path,
) -> None:
    """MLServer serving the same booster file over V2 REST, two configurations."""
    name, record = "mlserver", collected.server("mlserver")
    record["venv"] = mlserver_side.ensure_venv(venv)
    repo = mlserver_side.write_repo(
        assets.workdir / "mlserver-repo", assets.model_path, *two_ports()
    )
    record.update(settings=repo.settings, model_settings=repo.models)
    base = f"http://127.0.0.1:{repo.http_port}"
    urls = {model: f"{base}/v2/models/{model}/infer" for model in repo.models}
    launch = serving.Launch(
        argv=mlserver_side.argv(venv, repo),
        env=serving.server_env(),
        invoke_url=urls[mlserver_side.MODEL],
        ready=lambda: all(
            http_request(f"{base}/v2/models/{model}/ready")[0] == 200 for model in repo.models
        ),
    )
    record["argv"] = launch.argv
    _start(stack, collected, name, launch, assets.workdir)
    for series_name, model in (
        (report_mod.MLSERVER, mlserver_side.MODEL),
        (report_mod.MLSERVER_BATCHED, mlserver_side.BATCHED_MODEL),
    ):
        series = Series(series_name, name, "v2-rest", "wrk", urls[model], req.v2, model=model)
        _add_series(collected, series, partial(check_v2_rest, urls[model], req.v2, req.expected))
