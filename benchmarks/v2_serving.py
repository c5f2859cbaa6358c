"""V2 serving benchmark: modelyard's SageMaker, V2 REST and V2 gRPC routes, MLServer, and the
cost of the inference core, in one run.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.

What it does, in a temporary work folder:

1. Trains ``serving.py``'s model (XGBoost, 100 trees, depth 6, 30 features,
   ``make_classification`` with a fixed seed) and builds the one-row requests: SageMaker JSON
   ``{"instances": [row]}``, a V2 JSON request (``input-0``, shape [1, 30], FP64) and the same
   V2 request as a gRPC ``ModelInferRequest``.
2. Starts four servers, each in its own process group, each with 2 workers, and checks that
   each route answers the model's prediction:

   - ``modelyard`` (this working tree), started with the same flags as the older commit's
     server (no ``--grpc-port``): ``POST /endpoints/bench/invocations`` and
     ``POST /v2/models/bench/infer``. Its SageMaker route is compared with V2 REST (same
     server) and with the older commit's (same flags: the cost of the inference core);
   - ``modelyard+grpc`` (this working tree, its own home) started with ``--grpc-port``, which
     runs a grpc.aio server in every worker's event loop: V2 gRPC, and the SageMaker route
     again, so that what enabling gRPC costs an HTTP request is measured on its own
     (``grpc_enabled_cost``). The V2 parts are measured only if their code exists and they
     answer; see ``skipped_series``;
   - modelyard at commit 329b317 (before the inference-core refactor), from a ``git
     worktree`` with ``PYTHONPATH`` at its ``src``: the SageMaker route. ``v2_gc_freeze/``
     follows on its ``PYTHONPATH``, so its workers freeze their startup heap after startup as
     the current code does (a later change than the core; without it, full GC pauses of
     100-400 ms would count against the older code);
   - MLServer 1.7 with mlserver-xgboost in ``benchmarks/.venv-mlserver`` (made with uv if
     missing): V2 REST, as MLServer ships it and with adaptive batching (``mlserver_side.py``).
3. For 1 and 64 connections, runs rounds: in each round every series gets a warm-up and one
   measured run, in an order rotated from round to round, so a shared machine's slow minutes
   fall on all series alike; ratios are taken within a round, and the two series of each
   main ratio run next to each other (``v2_serving_report.RUN_ORDER``). HTTP load comes from ``wrk``
   (``wrk_post.lua``: the V2 JSON body is just another JSON body, so the same script serves),
   gRPC load from ``h2load`` (C, HTTP/2; ``h2load_grpc.py``) and from Triton's Python client in
   one process per stream (``grpc_load.py``). ``ghz`` is not in Debian, PyPI or npm (npm's
   ``ghz`` is an empty placeholder), so it is not used.
4. Reads each server's CPU time (its whole session) and the machine's around each run, so
   CPU per request, the load generator's CPU and other users' CPU are on record.
5. Writes JSON (``--out``), a figure (``--figure``) and prints a table and the targets.

Run (from the repository root)::

    .venv/bin/python benchmarks/v2_serving.py            # full run, about 14 minutes
    .venv/bin/python benchmarks/v2_serving.py --quick    # smoke run, about 2-3 minutes

Needs ``wrk`` and ``h2load`` (``apt-get install wrk nghttp2-client``). Every server's process
group is stopped on exit, including on Ctrl-C, SIGTERM and errors, and the worktree is
removed. ``--skip grpc,core,mlserver`` leaves those servers out (for a quick look at
modelyard).

Modules: ``v2_servers.py`` (start servers, check answers), ``v2_measure.py`` (rounds, CPU
accounting), ``v2_serving_report.py`` (ratios, targets, table, figure), ``mlserver_side.py``,
``modelyard_side.py``, ``h2load_grpc.py``, ``grpc_load.py``; from ``serving.py`` the model,
the modelyard setup and ``measured_run``; ``serverproc.py`` for processes; ``wrkload.py``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h2load_grpc
import mlserver_side
import serving
import v2_serving_report as report_mod
from rich.console import Console
from serverproc import BenchmarkError
from v2_measure import run_rounds
from v2_servers import (
    CORE_COMMIT,
    CURRENT,
    CURRENT_GRPC,
    WORKERS,
    Collected,
    Requests,
    build_requests,
    start_core_before,
    start_current,
    start_current_grpc,
    start_mlserver,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "v2_serving.json"
DEFAULT_FIGURE = BENCH_DIR / "results" / "v2_serving.png"

DEFAULTS = {"duration": 10, "warmup": 2, "repeats": 3, "settle": 20}
QUICK = {"duration": 3, "warmup": 1, "repeats": 1, "settle": 3}


# --------------------------------------------------------------------------------------------
# Report


def _version(package: str) -> str | None:
    """An installed distribution's version, or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    """Output of a git command in the repository (empty on failure)."""
    run = subprocess.run(
        ["git", "-C", str(serving.REPO_ROOT), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return run.stdout.strip()


def machine_info() -> dict[str, Any]:
    """``serving.py``'s machine record plus this benchmark's tools and the code under test."""
    info = serving.machine_info(serving.REPO_ROOT, serving.cpu_count())
    info["packages"].update(
        {name: _version(name) for name in ("tritonclient", "grpcio", "protobuf", "matplotlib")}
    )
    info["h2load"] = h2load_grpc.h2load_version()
    info["git_head"] = _git("rev-parse", "HEAD")
    info["git_uncommitted_in_src"] = _git("status", "--short", "--", "src").splitlines()
    info["core_before_commit"] = _git("rev-parse", CORE_COMMIT)
    return info


def parameters(args: argparse.Namespace, req: Requests, assets: serving.Assets) -> dict:
    """The benchmark's settings, as the JSON states them."""
    return {
        "mode": "quick" if args.quick else "full",
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "repeats": args.repeats,
        "settle_max_s": args.settle,
        "connections": args.connections,
        "workers": WORKERS,
        "model": {
            "kind": "xgboost binary:logistic",
            "trees": serving.N_TREES,
            "max_depth": serving.MAX_DEPTH,
            "features": serving.N_FEATURES,
            "training_rows": serving.N_SAMPLES,
            "data": f"sklearn make_classification(random_state={serving.SEED})",
            "format": "UBJ, the same file for every server",
            "inprocess_single_row_predict_us": assets.inprocess_predict_us,
        },
        "requests": {
            "sagemaker_json": req.sagemaker.decode(),
            "v2_json": req.v2.decode(),
            "v2_grpc": "ModelInferRequest: input-0, FP64, shape [1, 30], data in "
            "raw_input_contents (as tritonclient sends it)",
        },
        "server_env": serving.SERVER_ENV,
        "modelyard_batching": serving.MODELYARD_BATCHING,
        "mlserver": {
            "settings": "see servers.mlserver.settings / model_settings",
            "parallel_workers": mlserver_side.PARALLEL_WORKERS,
            "why": mlserver_side.__doc__,
        },
        "core_overhead": {
            "before": f"modelyard at commit {CORE_COMMIT} (git worktree, PYTHONPATH=<it>/src, "
            "same venv, its own home)",
            "after": f"this working tree, server {CURRENT!r} (see machine.git_uncommitted_in_src)",
            "flags": "the same for both: serve --host --port --workers, no --grpc-port",
            "gc": "the current serving app freezes its startup heap (gc.freeze) so that full "
            "collections do not stop a worker for 100-400 ms; the older server gets the same "
            "through benchmarks/v2_gc_freeze/sitecustomize.py on its PYTHONPATH (see "
            "servers.<it>.gc_frozen_workers), so that only the inference core differs",
        },
        "grpc_enabled_cost": f"server {CURRENT_GRPC!r} is server {CURRENT!r}'s code and "
        "model on its own home, started with --grpc-port; its SageMaker route against "
        f"{CURRENT!r}'s, paired per round",
        "same_server_ratios": "V2 REST / SageMaker compares two routes of one server; gRPC "
        f"series are compared with the SageMaker route of {CURRENT_GRPC!r}",
        "load_generators": {
            "wrk": "benchmarks/wrk_post.lua for both JSON bodies; threads min(connections, 2); "
            "one request in flight per connection",
            "h2load": "HTTP/2, -c connections -m 1 (one stream in flight per connection), "
            "-t min(connections, 2); latency from --log-file; gRPC errors counted from the "
            "DATA bytes (an error answer carries no message)",
            "python-grpc": "grpc_load.py: one process per stream, each a tritonclient.grpc "
            "InferenceServerClient calling the synchronous infer() in a closed loop. Python on "
            "the same 2 cores: at 64 streams it can be the bottleneck; see client_cpu_s and "
            "cpu_busy_fraction per run",
            "ghz": "not used: no ghz in Debian's archive or on PyPI, and npm's `ghz` is an "
            "empty 0.0.0 placeholder",
            "percentiles": "wrk (4.x) corrects its histogram for coordinated omission before "
            "reporting it (each latency over twice the mean interval per connection adds "
            "synthetic samples), so one stall of T ms in a short run moves p99 and the mean "
            "(at 1 connection, a 137 ms stall in 3 s made p99 104 ms); h2load and grpc_load.py "
            "report what they measured (closed loops, uncorrected)",
        },
        "ratios": "per round (the series of one round ran back to back, in rotated order); "
        "targets use the median of the paired ratios",
        "cpu": "server: utime+stime of the server's session from /proc around each run; "
        "client: the load generator's own CPU; other_cpu_s: the machine's busy time minus "
        "server, client and the idle benchmark servers (other users of a shared machine)",
    }


def build_report(
    args: argparse.Namespace,
    collected: Collected,
    started: datetime,
    machine: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The whole JSON document."""
    by_name = {series.name: series.record() for series in collected.series}
    rows = [
        report_mod.summarise(by_name[name], connections, runs)
        for connections in args.connections
        for name in by_name
        if (runs := collected.runs.get((name, connections)))
    ]
    return {
        "benchmark": "v2_serving",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "interrupted": collected.interrupted,
        "machine": machine,
        "parameters": params,
        "servers": collected.servers,
        "series": list(by_name.values()),
        "skipped_series": collected.skipped,
        "rounds": collected.rounds,
        "results": rows,
        "ratios": report_mod.ratios(rows, args.connections),
        "grpc_enabled_cost": report_mod.grpc_cost(rows, args.connections),
        "targets": report_mod.targets(rows, args.connections),
        "contention": report_mod.contention(rows),
    }


# --------------------------------------------------------------------------------------------
# Command line


def _int_list(text: str) -> list[int]:
    """``"1,64"`` as integers."""
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, help=f"seconds per run ({DEFAULTS['duration']})")
    parser.add_argument("--warmup", type=int, help=f"seconds of warm-up ({DEFAULTS['warmup']})")
    parser.add_argument("--repeats", type=int, help=f"rounds ({DEFAULTS['repeats']})")
    parser.add_argument(
        "--settle",
        type=int,
        help="before each round, wait up to this many seconds for a quiet machine "
        f"({DEFAULTS['settle']}; {QUICK['settle']} with --quick)",
    )
    parser.add_argument("--connections", type=_int_list, default=[1, 64])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s runs, 1 round")
    parser.add_argument("--mlserver-venv", type=Path, default=mlserver_side.DEFAULT_VENV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--figure", type=Path, default=DEFAULT_FIGURE)
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated servers not to start: grpc, core, mlserver",
    )
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if args.settle < 0 or min([args.duration, args.warmup, args.repeats, *args.connections]) < 1:
        parser.error("durations, repeats and connections must be positive")
    return args


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt, so that servers are stopped on the way out."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def _recorded(collected: Collected, server: str) -> Iterator[None]:
    """Record a server's setup failure and go on with the others."""
    try:
        yield
    except (
        BenchmarkError,
        OSError,
        subprocess.SubprocessError,
        mlserver_side.MLServerSetupFailed,
    ) as exc:
        collected.server(server)["failures"].append({"setup": str(exc)})
        print(f"{server}: setup failed, not measured: {exc}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (targets met or not), 130 when interrupted."""
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    started, machine = datetime.now(UTC), machine_info()
    collected = Collected()
    with tempfile.TemporaryDirectory(prefix="modelyard-v2bench-") as tmp:
        assets = serving.build_assets(Path(tmp))
        req = build_requests(assets)
        params = parameters(args, req, assets)
        print(f"model ready: {assets.inprocess_predict_us:.0f} us per row in-process", flush=True)
        try:
            with ExitStack() as stack:
                with _recorded(collected, CURRENT):
                    start_current(stack, assets, req, collected)
                if "grpc" not in args.skip:
                    with _recorded(collected, CURRENT_GRPC):
                        start_current_grpc(stack, assets, req, collected)
                if "core" not in args.skip:
                    with _recorded(collected, f"modelyard@{CORE_COMMIT}"):
                        start_core_before(stack, assets, req, collected)
                if "mlserver" not in args.skip:
                    with _recorded(collected, "mlserver"):
                        start_mlserver(stack, assets, req, collected, args.mlserver_venv)
                collected.series.sort(key=lambda one: report_mod.run_rank(one.name))
                run_rounds(args, collected, req.row)
        except KeyboardInterrupt:
            collected.interrupted = True
            print("interrupted: servers stopped; writing what was measured", file=sys.stderr)
        report = build_report(args, collected, started, machine, params)
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    serving.write_json(args.out, report)
    report_mod.plot(report, args.figure)
    report_mod.print_report(
        Console(width=max(shutil.get_terminal_size((160, 24)).columns, 150)), report
    )
    print(f"wrote {args.out} and {args.figure}")
    return 130 if collected.interrupted else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before any server started, or while writing the report
        print("interrupted", file=sys.stderr)
        sys.exit(130)
