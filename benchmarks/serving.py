"""Serving benchmark: modelyard's endpoint server against a thin reference server and an empty one.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.

What it does, in a temporary work folder:

1. Trains a 100-tree, depth-6 XGBoost binary classifier on 30 synthetic features
   (``make_classification``, fixed seed) and saves it as UBJ.
2. Starts each server as its own process group on 127.0.0.1: the reference, the empty one,
   ``modelyard`` (the endpoint's default predictor: ``auto``, i.e. the compiled tree ensemble
   when it verifies equal) and ``modelyard-native`` (the same endpoint created with
   ``--predictor native``), with 2 workers (``--full``: 1 and 2). It checks that each answers
   the request body correctly and, for modelyard, reads every worker's ``GET /endpoints`` to
   record which predictor serves the variant. Then it drives each server with ``wrk``
   (``wrk_post.lua``: one single-row JSON body) at 1 and 64 connections (``--full``: 1, 8
   and 64): a warm-up run, then ``--repeats`` measured runs of ``--duration`` seconds.
   Medians are reported, with every repetition kept.
3. Reads the server's CPU time (the whole session: server and workers) from ``/proc`` around
   each run, for CPU microseconds per request.
4. Writes JSON (``--out``) with machine, parameters, results (each row names the predictor
   that served), ratios and the issue's targets, and prints a table.

``--soak SECONDS`` is a separate mode: modelyard with 2 workers at 64 connections for
SECONDS, measured in ``--soak-window`` windows, to see whether p99 or memory grow.

Every server's process group is stopped on exit, including on Ctrl-C, SIGTERM and errors.
If modelyard's commands fail (or do not exist yet), the failure is recorded in the JSON and
the other servers are still measured.

Run (from the repository root)::

    .venv/bin/python benchmarks/serving.py                      # the targets, ~6 minutes
    .venv/bin/python benchmarks/serving.py --quick              # smoke run, 3 s x 1
    .venv/bin/python benchmarks/serving.py --full               # 1/2 workers x 1/8/64, ~15 min
    .venv/bin/python benchmarks/serving.py --servers reference,empty --connections 1,64
    .venv/bin/python benchmarks/serving.py --soak 900           # 15-minute soak
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import xgboost
from rich.console import Console
from serverproc import (
    BenchmarkError,
    Server,
    ServerFailed,
    free_port,
    http_request,
    machine_cpu_seconds,
    running_server,
    session_cpu_seconds,
    session_rss_bytes,
)
from serving_machine import machine_info
from serving_predictors import (
    inprocess_compiled,
    median_call_us,
    predictor_label,
    served_predictors,
)
from serving_report import earlier_targets, print_report, ratios, targets
from sklearn.datasets import make_classification
from wrkload import MAX_THREADS as WRK_MAX_THREADS
from wrkload import WrkFailed, WrkResult, run_wrk, threads_for

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_OUT = BENCH_DIR / "results" / "serving.json"
DEFAULT_SOAK_OUT = BENCH_DIR / "results" / "serving-soak.json"
SERVERS = ("reference", "empty", "modelyard", "modelyard-native")
# The ``--predictor`` each modelyard server's endpoint is created with (None: the default, auto).
MODELYARD_PREDICTORS: dict[str, str | None] = {"modelyard": None, "modelyard-native": "native"}

# The model.
N_SAMPLES = 20_000
N_FEATURES = 30
N_TREES = 100
MAX_DEPTH = 6
SEED = 20_240_601
EXAMPLE_ROWS = 5

# Processes and time bounds.
SERVER_ENV = {"OMP_NUM_THREADS": "1"}  # every server; the reference also sets nthread=1
UVICORN_FLAGS = ("--loop", "uvloop", "--http", "httptools", "--no-access-log")
MODELYARD_BATCHING = {"--batch-size": "main=64", "--batch-wait-ms": "main=2"}
MODELYARD_ENDPOINT = "bench"
READY_TIMEOUT_S = 120.0
CLI_TIMEOUT_S = 180.0
WARMUP_S = 3
DURATION_S = 10  # 4 servers x 2 points x (3 + 3 x 10) s: the default run takes ~6 minutes
QUICK_DURATION_S = 3
DEFAULT_CONNECTIONS, FULL_CONNECTIONS = [1, 64], [1, 8, 64]
DEFAULT_WORKERS, FULL_WORKERS = [2], [1, 2]
PREDICTORS_TIMEOUT_S = 60.0  # for every worker to answer GET /endpoints with the endpoint
PREDICTION_TOLERANCE = 1e-5

# Soak mode.
SOAK_WORKERS = 2
SOAK_CONNECTIONS = 64
SOAK_P99_GROWTH_LIMIT = 1.5  # last window's p99 at most this times the first window's


# Per-run metrics reported as medians over the repetitions.
SUMMARY_METRICS = (
    "rps", "p50_ms", "p99_ms", "cpu_us_per_request", "cpu_busy_fraction", "other_cpu_s"
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# The model and the request


@dataclass(frozen=True)
class Assets:
    """What every server run needs: the work folder, the model, the request and its answer."""

    workdir: Path
    model_path: Path
    example_csv: Path
    body: bytes
    expected: float
    inprocess_predict_us: float
    inprocess_compiled: dict[str, Any]  # modelyard's compiled predictor, timed the same way


def build_assets(workdir: Path) -> Assets:
    """Train and save the model, write the input example, build the request body."""
    features, labels = make_classification(
        n_samples=N_SAMPLES,
        n_features=N_FEATURES,
        n_informative=12,
        n_redundant=6,
        random_state=SEED,
    )
    names = [f"f{i}" for i in range(N_FEATURES)]
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": MAX_DEPTH, "eta": 0.1, "seed": SEED},
        xgboost.DMatrix(features, label=labels, feature_names=names),
        num_boost_round=N_TREES,
    )
    model_path = workdir / "model.ubj"
    booster.save_model(model_path)

    example_csv = workdir / "example.csv"
    with example_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(features[:EXAMPLE_ROWS].tolist())

    row = [round(float(value), 6) for value in features[0]]
    one_row = np.asarray([row], dtype=np.float32)
    booster.set_param({"nthread": 1})
    return Assets(
        workdir=workdir,
        model_path=model_path,
        example_csv=example_csv,
        body=orjson.dumps({"instances": [row]}),
        expected=float(booster.inplace_predict(one_row)[0]),
        inprocess_predict_us=median_call_us(partial(booster.inplace_predict, one_row)),
        inprocess_compiled=inprocess_compiled(booster, features[:EXAMPLE_ROWS], row),
    )


# --------------------------------------------------------------------------------------------
# The servers


class SetupFailed(BenchmarkError):
    """A server could not be prepared (for modelyard: a CLI command failed)."""


@dataclass(frozen=True)
class Launch:
    """How to start one server process and talk to it."""

    argv: list[str]
    env: dict[str, str]
    invoke_url: str
    ready: Callable[[], bool]
    describe_url: str | None = None  # modelyard's GET /endpoints: the predictor per variant


@dataclass(frozen=True)
class Launcher:
    """A prepared server: builds a ``Launch`` for a port and a worker count."""

    make: Callable[[int, int], Launch]
    expected: float | None  # the prediction it must answer for the body; None: not checked
    details: dict[str, Any]


def server_env(**extra: str) -> dict[str, str]:
    """This process's environment without MODELYARD_* settings, plus ``SERVER_ENV``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    return {**env, **SERVER_ENV, **extra}


def _answers_200(url: str, body: bytes | None = None) -> bool:
    """Whether ``url`` answers 200 to a GET (or a POST of ``body``)."""
    return http_request(url, body)[0] == 200


def _uvicorn_launch(factory: str, assets: Assets, port: int, workers: int) -> Launch:
    """uvicorn running a ``reference_server`` app factory."""
    invoke_url = f"http://127.0.0.1:{port}/invocations"
    argv = [
        sys.executable, "-m", "uvicorn", f"reference_server:{factory}", "--factory",
        "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), *UVICORN_FLAGS, "--log-level", "warning",
    ]  # fmt: skip
    return Launch(
        argv=argv,
        env=server_env(BENCH_MODEL_PATH=str(assets.model_path)),
        invoke_url=invoke_url,
        ready=partial(_answers_200, invoke_url, assets.body),
    )


def prepare_uvicorn(factory: str, predicts: bool, assets: Assets) -> Launcher:
    """A ``reference_server`` app under uvicorn; nothing to prepare."""
    return Launcher(
        make=partial(_uvicorn_launch, factory, assets),
        expected=assets.expected if predicts else None,
        details={
            "app": f"benchmarks/reference_server.py:{factory}",
            "uvicorn_flags": list(UVICORN_FLAGS),
            "prediction_threads": "booster.set_param({'nthread': 1})",
            "predictor": "xgboost Booster.inplace_predict" if predicts else None,
        },
    )


def modelyard_cli() -> Path:
    """The ``modelyard`` console script next to this interpreter."""
    return Path(sys.executable).with_name("modelyard")


def _run_cli(args: Sequence[str], env: dict[str, str]) -> str:
    """Run a modelyard command; return its stdout, or raise SetupFailed."""
    argv = [str(modelyard_cli()), *args]
    try:
        run = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupFailed(f"`modelyard {' '.join(args)}` failed: {exc}") from exc
    if run.returncode != 0:
        output = (run.stderr or run.stdout).strip()[-2000:]
        raise SetupFailed(f"`modelyard {' '.join(args)}` exited {run.returncode}: {output}")
    return run.stdout


def _modelyard_launch(cli_env: dict[str, str], port: int, workers: int) -> Launch:
    """``modelyard serve`` on the home the setup filled."""
    base = f"http://127.0.0.1:{port}"
    argv = [
        str(modelyard_cli()), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
    return Launch(
        argv=argv,
        env=cli_env,
        invoke_url=f"{base}/endpoints/{MODELYARD_ENDPOINT}/invocations",
        ready=lambda: all(_answers_200(base + path) for path in ("/ping", "/readyz")),
        describe_url=f"{base}/endpoints",
    )


def prepare_modelyard(
    assets: Assets, predictor: str | None = None, create_args: Sequence[str] = ()
) -> Launcher:
    """Register the model and create the endpoint (with batching when the CLI offers it).

    ``predictor`` is passed as ``--predictor`` (None: the default, ``auto``); each predictor
    gets its own modelyard home, so a server loads only its own endpoint. ``create_args`` are
    added to ``endpoints create`` (``monitoring_cost.py``: ``--capture 100``).
    """
    home = assets.workdir / (f"modelyard-{predictor}-home" if predictor else "modelyard-home")
    # Wide help text, so that option names are never wrapped or cut.
    env = server_env(MODELYARD_HOME=str(home), COLUMNS="200", NO_COLOR="1")
    commands = [
        ["models", "register", MODELYARD_ENDPOINT, str(assets.model_path),
         "--flavor", "xgboost", "--input-example", str(assets.example_csv)],
    ]  # fmt: skip
    _run_cli(commands[0], env)
    create_help = _run_cli(["endpoints", "create", "--help"], env)
    batching = {flag: value for flag, value in MODELYARD_BATCHING.items() if flag in create_help}
    choice: list[str] = []
    if predictor is not None:
        if "--predictor" not in create_help:
            raise SetupFailed("`modelyard endpoints create` has no --predictor option")
        choice = ["--predictor", predictor]
    commands.append(
        ["endpoints", "create", MODELYARD_ENDPOINT, "--variant", f"main={MODELYARD_ENDPOINT}:1"]
        + [part for flag, value in batching.items() for part in (flag, value)]
        + choice
        + list(create_args)
    )
    _run_cli(commands[1], env)
    return Launcher(
        make=partial(_modelyard_launch, env),
        expected=assets.expected,
        details={
            "commands": [["modelyard", *command] for command in commands],
            "batching": batching or None,
            "predictor_option": predictor or "default (auto)",
            "prediction_threads": "one per predict: XGBoost nthread=1 / onnxruntime "
            "intra_op_num_threads=1 (the runtimes set them), OMP_NUM_THREADS=1",
        },
    )


PREPARERS: dict[str, Callable[[Assets], Launcher]] = {
    "reference": partial(prepare_uvicorn, "create_reference_app", True),
    "empty": partial(prepare_uvicorn, "create_empty_app", False),
    **{name: partial(prepare_modelyard, predictor=p) for name, p in MODELYARD_PREDICTORS.items()},
}


def _first_prediction(payload: Any) -> float | None:
    """The first number in ``{"predictions": [...]}`` (nested lists allowed), or None."""
    value = payload.get("predictions") if isinstance(payload, dict) else None
    while isinstance(value, list) and value:
        value = value[0]
    return float(value) if isinstance(value, int | float) else None


def check_answer(launch: Launch, body: bytes, expected: float | None) -> dict[str, Any]:
    """POST the benchmark body once; fail unless it is answered with 200."""
    status, answer = http_request(launch.invoke_url, body)
    if status != 200:
        raise ServerFailed(f"POST {launch.invoke_url} answered {status}: {answer[:500]!r}")
    try:
        prediction = _first_prediction(orjson.loads(answer))
    except orjson.JSONDecodeError:
        prediction = None
    matches = None
    if expected is not None:
        matches = prediction is not None and abs(prediction - expected) <= PREDICTION_TOLERANCE
    return {
        "status": status,
        "body": answer[:300].decode(errors="replace"),
        "prediction": prediction,
        "expected": expected,
        "matches_model": matches,
    }


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True)
class Running:
    """A started server under measurement."""

    name: str
    workers: int
    server: Server
    launch: Launch


@dataclass
class Collected:
    """Everything measured so far (kept when the run is interrupted)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    soak: dict[str, Any] | None = None
    interrupted: bool = False

    def server(self, name: str) -> dict[str, Any]:
        """The JSON record of one server, created on first use."""
        return self.servers.setdefault(name, {"answers": {}, "failures": []})


def cpu_count() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def measured_run(running: Running, body: bytes, connections: int, seconds: int) -> dict:
    """One wrk run with the server's CPU time read around it."""
    pid, url = running.server.pid, running.launch.invoke_url
    cpu_before, (busy_before, total_before) = session_cpu_seconds(pid), machine_cpu_seconds()
    result: WrkResult = run_wrk(url, body, connections=connections, duration_s=seconds)
    server_cpu_s = session_cpu_seconds(pid) - cpu_before
    busy_after, total_after = machine_cpu_seconds()
    machine_busy_s = busy_after - busy_before
    return {
        "rps": result.rps,
        "requests": result.requests,
        "duration_s": result.duration_s,
        "p50_ms": result.p50_ms,
        "p90_ms": result.p90_ms,
        "p99_ms": result.p99_ms,
        "max_ms": result.max_ms,
        "mean_ms": result.mean_ms,
        "errors": {**result.errors, "total": result.total_errors},
        "server_cpu_s": server_cpu_s,
        "cpu_us_per_request": server_cpu_s / result.requests * 1e6 if result.requests else None,
        "client_cpu_s": result.client_cpu_s,
        # Server plus wrk CPU over what the machine has: near 1.0 means the cores are saturated.
        "cpu_busy_fraction": (server_cpu_s + result.client_cpu_s)
        / (cpu_count() * result.duration_s),
        # Everything else that ran meanwhile (other users of a shared machine): should be ~0.
        "other_cpu_s": max(0.0, machine_busy_s - server_cpu_s - result.client_cpu_s),
        "machine_busy_fraction": machine_busy_s / (total_after - total_before),
    }


def _median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(
    name: str, workers: int, connections: int, repetitions: list[dict[str, Any]]
) -> dict[str, Any]:
    """One result row: medians over the repetitions, errors summed, repetitions kept."""
    error_kinds = repetitions[0]["errors"].keys()
    return {
        "server": name,
        "workers": workers,
        "connections": connections,
        "wrk_threads": threads_for(connections),
        **{metric: _median(rep[metric] for rep in repetitions) for metric in SUMMARY_METRICS},
        "errors": {kind: sum(rep["errors"][kind] for rep in repetitions) for kind in error_kinds},
        "repetitions": repetitions,
    }


def _progress(label: str, run: dict[str, Any]) -> None:
    """One line per measured run."""
    cpu = run["cpu_us_per_request"]
    print(
        f"{label}: {run['rps']:8.0f} rps  p50 {run['p50_ms']:7.2f} ms  "
        f"p99 {run['p99_ms']:7.2f} ms  errors {run['errors']['total']}  "
        f"server cpu {cpu if cpu is None else round(cpu)} us/req  "
        f"busy {run['cpu_busy_fraction']:.0%} (+{run['other_cpu_s']:.1f} s other CPU)",
        flush=True,
    )


def measure_point(
    running: Running, connections: int, args: argparse.Namespace, body: bytes
) -> dict[str, Any]:
    """Warm up, then ``args.repeats`` measured runs at one connection count."""
    run_wrk(running.launch.invoke_url, body, connections=connections, duration_s=args.warmup)
    label = f"{running.name:<16} w={running.workers} c={connections:<3}"
    repetitions = []
    for index in range(1, args.repeats + 1):
        run = measured_run(running, body, connections, args.duration)
        _progress(f"{label} rep {index}/{args.repeats}", run)
        repetitions.append(run)
    return summarise(running.name, running.workers, connections, repetitions)


def prepare(name: str, assets: Assets, collected: Collected) -> Launcher | None:
    """Prepare one server; on failure record it and return None."""
    record = collected.server(name)
    try:
        launcher = PREPARERS[name](assets)
    except BenchmarkError as exc:
        record["setup_error"] = str(exc)
        print(f"{name}: setup failed, skipped: {exc}", file=sys.stderr, flush=True)
        return None
    record["details"] = launcher.details
    return launcher


@contextmanager
def serving(
    name: str, launcher: Launcher, workers: int, assets: Assets, collected: Collected, log: str
) -> Iterator[Running]:
    """Start a server, check (and record) its answer to the body, stop it on leaving."""
    launch = launcher.make(free_port(), workers)
    with running_server(
        launch.argv,
        env=launch.env,
        log_path=assets.workdir / f"{log}.log",
        ready=launch.ready,
        ready_timeout_s=READY_TIMEOUT_S,
    ) as server:
        print(f"{name} with {workers} worker(s) is up (pid {server.pid})", flush=True)
        answer = check_answer(launch, assets.body, launcher.expected)
        record = collected.server(name)
        record["answers"][str(workers)] = answer
        if launch.describe_url is not None:
            served = served_predictors(
                launch.describe_url, workers, MODELYARD_ENDPOINT, PREDICTORS_TIMEOUT_S
            )
            record.setdefault("served_predictors", {})[str(workers)] = served
            print(
                f"{name}: predictor {'+'.join(served['kinds']) or '?'} on "
                f"{served['workers_seen']} worker(s)",
                flush=True,
            )
        yield Running(name, workers, server, launch)


def run_matrix(args: argparse.Namespace, assets: Assets, collected: Collected) -> None:
    """Every server, worker count and connection count; failures recorded, never raised."""
    for name in args.servers:
        launcher = prepare(name, assets, collected)
        if launcher is None:
            continue
        for workers in args.workers:
            try:
                log = f"{name}-{workers}w"
                with serving(name, launcher, workers, assets, collected, log) as running:
                    for connections in args.connections:
                        row = measure_point(running, connections, args, assets.body)
                        row["predictor"] = predictor_label(collected.server(name), workers)
                        collected.rows.append(row)
            except (BenchmarkError, WrkFailed) as exc:
                collected.server(name)["failures"].append({"workers": workers, "error": str(exc)})
                print(f"{name} with {workers} worker(s) failed: {exc}", file=sys.stderr)


def window_lengths(total_s: int, window_s: int) -> list[int]:
    """``total_s`` cut into windows of ``window_s`` (the last one may be shorter)."""
    return [min(window_s, total_s - start) for start in range(0, total_s, window_s)]


def run_soak(args: argparse.Namespace, assets: Assets, collected: Collected) -> dict[str, Any]:
    """One server, 2 workers, 64 connections, measured window by window."""
    name = args.soak_server
    windows: list[dict[str, Any]] = []
    soak: dict[str, Any] = {
        "server": name,
        "workers": SOAK_WORKERS,
        "connections": SOAK_CONNECTIONS,
        "seconds": args.soak,
        "window_s": args.soak_window,
        "windows": windows,
    }
    launcher = prepare(name, assets, collected)
    if launcher is None:
        return {**soak, "error": collected.server(name)["setup_error"]}
    try:
        with serving(name, launcher, SOAK_WORKERS, assets, collected, f"{name}-soak") as running:
            url = running.launch.invoke_url
            run_wrk(url, assets.body, connections=SOAK_CONNECTIONS, duration_s=args.warmup)
            started = time.monotonic()
            for index, seconds in enumerate(window_lengths(args.soak, args.soak_window), 1):
                window = measured_run(running, assets.body, SOAK_CONNECTIONS, seconds)
                window["elapsed_s"] = time.monotonic() - started
                window["server_rss_mb"] = session_rss_bytes(running.server.pid) / 2**20
                _progress(f"soak window {index}", window)
                windows.append(window)
    except (BenchmarkError, WrkFailed) as exc:
        soak["error"] = str(exc)
    return {**soak, **soak_verdict(windows)}


def soak_verdict(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether p99 (and memory) grew from the first window to the last."""
    if not windows:
        return {}
    p99 = [w["p99_ms"] for w in windows]
    minutes = [w["elapsed_s"] / 60 for w in windows]
    slope = float(np.polyfit(minutes, p99, 1)[0]) if len(windows) > 1 else 0.0
    return {
        "p99_first_ms": p99[0],
        "p99_last_ms": p99[-1],
        "p99_max_ms": max(p99),
        "p99_slope_ms_per_min": slope,
        "rss_first_mb": windows[0]["server_rss_mb"],
        "rss_last_mb": windows[-1]["server_rss_mb"],
        "errors": sum(w["errors"]["total"] for w in windows),
        "p99_growth_limit": f"last window p99 <= {SOAK_P99_GROWTH_LIMIT} x first window p99",
        "p99_stable": p99[-1] <= SOAK_P99_GROWTH_LIMIT * p99[0],
    }


# --------------------------------------------------------------------------------------------
# Report


def parameters(args: argparse.Namespace, assets: Assets) -> dict[str, Any]:
    """The benchmark's settings, as the JSON states them."""
    return {
        "mode": "soak" if args.soak else "matrix",
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "repeats": args.repeats,
        "connections": args.connections,
        "workers": args.workers,
        "servers": args.servers,
        "full_matrix": args.full,
        "model": {
            "kind": "xgboost binary:logistic",
            "trees": N_TREES,
            "max_depth": MAX_DEPTH,
            "features": N_FEATURES,
            "training_rows": N_SAMPLES,
            "data": f"sklearn make_classification(random_state={SEED})",
            "format": "UBJ",
            "prediction_threads": "nthread=1 in every server",
            "inprocess_single_row_predict_us": assets.inprocess_predict_us,
            "inprocess_compiled": assets.inprocess_compiled,
        },
        "request": {
            "body": assets.body.decode(),
            "bytes": len(assets.body),
            "content_type": "application/json",
        },
        "server_env": SERVER_ENV,
        "reference_and_empty_uvicorn": list(UVICORN_FLAGS),
        "load_generator": {
            "tool": "wrk",
            "script": "benchmarks/wrk_post.lua",
            "threads": f"min(connections, {WRK_MAX_THREADS})",
            "percentiles": "wrk's latency histogram (not corrected for coordinated omission)",
            "note": "wrk runs on the same machine and competes with the server for the cores; "
            "see client_cpu_s and cpu_busy_fraction per run",
        },
        "cpu_per_request": "utime+stime of the server's session (server and workers) from "
        "/proc/<pid>/stat, read around each measured run, over its requests",
    }


def build_report(
    args: argparse.Namespace,
    assets: Assets,
    collected: Collected,
    started: datetime,
    machine: dict[str, Any],
) -> dict:
    """The whole JSON document."""
    report = {
        "benchmark": "serving",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "interrupted": collected.interrupted,
        "machine": {**machine, "load_average_at_end": os.getloadavg()},
        "parameters": parameters(args, assets),
        "servers": collected.servers,
    }
    if args.soak:
        return {**report, "soak": collected.soak}
    return {
        **report,
        "results": collected.rows,
        "ratios": ratios(collected.rows),
        "targets": targets(collected.rows, collected.servers),
        "earlier_targets": earlier_targets(collected.rows, args.workers),
    }


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write the report atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_suffix(".json.tmp")
    partial_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    partial_path.replace(path)


# --------------------------------------------------------------------------------------------
# Command line


def _int_list(text: str) -> list[int]:
    """``"1,8,64"`` as integers."""
    return [int(part) for part in text.split(",") if part.strip()]


def _server_list(text: str) -> list[str]:
    """``"reference,empty"`` checked against the known servers."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown server(s) {unknown}; known: {SERVERS}")
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=DURATION_S, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=WARMUP_S, help="seconds of warm-up")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per point")
    parser.add_argument(
        "--connections",
        type=_int_list,
        help=f"default {DEFAULT_CONNECTIONS} ({FULL_CONNECTIONS} with --full)",
    )
    parser.add_argument(
        "--workers", type=_int_list, help=f"default {DEFAULT_WORKERS} ({FULL_WORKERS} with --full)"
    )
    parser.add_argument("--servers", type=_server_list, default=list(SERVERS))
    parser.add_argument(
        "--out",
        type=Path,
        help=f"JSON report (default {DEFAULT_OUT}, or {DEFAULT_SOAK_OUT} with --soak)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: --duration {QUICK_DURATION_S} --repeats 1"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"the whole matrix: workers {FULL_WORKERS}, connections {FULL_CONNECTIONS}",
    )
    parser.add_argument(
        "--soak",
        type=int,
        metavar="SECONDS",
        help="instead of the matrix: one server, 2 workers, 64 connections",
    )
    parser.add_argument("--soak-window", type=int, default=60, metavar="SECONDS")
    parser.add_argument("--soak-server", choices=SERVERS, default="modelyard")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.repeats = QUICK_DURATION_S, 1
    if args.connections is None:
        args.connections = FULL_CONNECTIONS if args.full else DEFAULT_CONNECTIONS
    if args.workers is None:
        args.workers = FULL_WORKERS if args.full else DEFAULT_WORKERS
    if args.out is None:
        args.out = DEFAULT_SOAK_OUT if args.soak else DEFAULT_OUT
    counts = [args.duration, args.warmup, args.repeats, args.soak_window]
    if min(counts + args.connections + args.workers) < 1:
        parser.error("durations, repeats, connections and workers must be positive")
    return args


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt, so that servers are stopped on the way out."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (targets met or not), 130 when interrupted."""
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    started, machine = datetime.now(UTC), machine_info(REPO_ROOT, cpu_count())
    collected = Collected()
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        assets = build_assets(Path(tmp))
        print(
            f"model ready: single-row predict {assets.inprocess_predict_us:.0f} us in-process",
            flush=True,
        )
        try:
            if args.soak:
                collected.soak = run_soak(args, assets, collected)
            else:
                run_matrix(args, assets, collected)
        except KeyboardInterrupt:
            collected.interrupted = True
            print("interrupted: servers stopped; writing what was measured", file=sys.stderr)
        report = build_report(args, assets, collected, started, machine)
    write_json(args.out, report)
    # Wide enough for the table when stdout is a file or a pipe (rich would assume 80).
    print_report(Console(width=max(shutil.get_terminal_size((130, 24)).columns, 130)), report)
    print(f"wrote {args.out}")
    return 130 if collected.interrupted else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before any server started, or while writing the report
        print("interrupted", file=sys.stderr)
        sys.exit(130)
