"""Measuring one series of ``v2_serving.py``: a warm-up and a measured run, with CPU accounting.

Every run, whatever its load generator, yields the fields ``serving.measured_run`` yields for
wrk (rps, latency percentiles, errors, server CPU per request, the client's CPU, the machine's
busy share, other users' CPU), plus the CPU the idle benchmark servers used meanwhile.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import h2load_grpc
import orjson
import serving
from grpc_load import RESULT_MARKER as GRPC_LOAD_MARKER
from grpc_load import START_TIMEOUT_S as GRPC_LOAD_START_S
from serverproc import BenchmarkError, Server, machine_cpu_seconds, session_cpu_seconds, stop
from tuning_machine import settle
from v2_servers import WORKERS, Collected, Series
from wrkload import WrkFailed, run_wrk

BENCH_DIR = Path(__file__).resolve().parent


class SeriesFailed(BenchmarkError):
    """One measured run of one series failed (its load generator or its server)."""


def _shape(raw: dict[str, Any], machine_busy_s: float, machine_total_s: float) -> dict:
    """A gRPC run's fields, named and derived as ``serving.measured_run`` names them."""
    duration, requests = raw["duration_s"], raw["requests"]
    server_cpu = raw["server_cpu_s"]
    client_cpu = raw["client_cpu_s"]
    return {
        **raw,
        "rps": requests / duration,
        "cpu_us_per_request": server_cpu / requests * 1e6 if requests else None,
        "cpu_busy_fraction": (server_cpu + client_cpu) / (serving.cpu_count() * duration),
        "other_cpu_s": max(0.0, machine_busy_s - server_cpu - client_cpu),
        "machine_busy_fraction": machine_busy_s / machine_total_s if machine_total_s else None,
    }


def _warm_up(series: Series, connections: int, seconds: int) -> None:
    """Load the series' route for ``seconds`` (``grpc_load.py`` warms up by itself)."""
    if series.client == "wrk":
        run_wrk(series.url, series.body, connections=connections, duration_s=seconds)
    elif series.client == "h2load":
        assert series.grpc_request is not None
        h2load_grpc.run_h2load(
            series.url, series.grpc_request, connections=connections, duration_s=seconds
        )


def _measure_wrk(series: Series, pid: int, connections: int, args: argparse.Namespace) -> dict:
    """One measured wrk run through ``serving.measured_run``."""
    launch = serving.Launch(argv=[], env={}, invoke_url=series.url, ready=lambda: True)
    running = serving.Running(series.name, WORKERS, Server(pid, Path(".")), launch)
    return serving.measured_run(running, series.body, connections, args.duration)


def _measure_h2load(series: Series, pid: int, connections: int, args: argparse.Namespace) -> dict:
    """One measured h2load run with the server's and the machine's CPU read around it."""
    assert series.grpc_request is not None
    cpu_before, (busy_before, total_before) = session_cpu_seconds(pid), machine_cpu_seconds()
    raw = h2load_grpc.run_h2load(
        series.url, series.grpc_request, connections=connections, duration_s=args.duration
    )
    busy_after, total_after = machine_cpu_seconds()
    raw["server_cpu_s"] = session_cpu_seconds(pid) - cpu_before
    return _shape(raw, busy_after - busy_before, total_after - total_before)


def _measure_python_grpc(
    series: Series, pid: int, connections: int, args: argparse.Namespace, row: list[float]
) -> dict:
    """``grpc_load.py`` in its own process group: its own warm-up, window and CPU reading."""
    argv = [
        sys.executable, str(BENCH_DIR / "grpc_load.py"), "--target", series.url,
        "--model", series.model, "--row", ",".join(map(str, row)),
        "--streams", str(connections), "--warmup", str(args.warmup),
        "--duration", str(args.duration), "--server-pid", str(pid),
    ]  # fmt: skip
    limit = GRPC_LOAD_START_S + args.warmup + args.duration + 60
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired as exc:
        raise SeriesFailed(f"grpc_load.py did not finish within {limit:.0f} s") from exc
    finally:
        stop(proc)  # the generator and any child it left, by process group
    line = next(
        (ln for ln in stdout.decode().splitlines() if ln.startswith(GRPC_LOAD_MARKER)), None
    )
    if proc.returncode != 0 or line is None:
        raise SeriesFailed(f"grpc_load.py exited {proc.returncode}: {stderr.decode()[-2000:]}")
    raw = orjson.loads(line.removeprefix(GRPC_LOAD_MARKER))
    return _shape(raw, raw.pop("machine_busy_s"), raw.pop("machine_total_s"))


def measure(
    series: Series, connections: int, args: argparse.Namespace, collected: Collected, row: list
) -> dict[str, Any]:
    """One warm-up and one measured run of a series, with the idle servers' CPU set apart."""
    pid = collected.pids[series.server]
    idle = [p for name, p in collected.pids.items() if name != series.server]
    _warm_up(series, connections, args.warmup)
    idle_before = sum(session_cpu_seconds(p) for p in idle)
    if series.client == "wrk":
        run = _measure_wrk(series, pid, connections, args)
    elif series.client == "h2load":
        run = _measure_h2load(series, pid, connections, args)
    else:
        run = _measure_python_grpc(series, pid, connections, args, row)
    # The other benchmark servers sit idle meanwhile; their CPU is not "other users". (For
    # grpc_load.py this also spans its start and warm-up: a slight overestimate.)
    idle_cpu = sum(session_cpu_seconds(p) for p in idle) - idle_before
    run["idle_bench_servers_cpu_s"] = idle_cpu
    run["other_cpu_s"] = max(0.0, run["other_cpu_s"] - idle_cpu)
    return run


def _progress(label: str, run: dict[str, Any]) -> None:
    """One line per measured run."""
    cpu = run["cpu_us_per_request"]
    print(
        f"{label}: {run['rps']:8.0f} rps  p50 {run['p50_ms'] or 0:7.2f} ms  "
        f"p99 {run['p99_ms'] or 0:7.2f} ms  errors {run['errors']['total']}  "
        f"server {cpu if cpu is None else round(cpu)} us/req  client {run['client_cpu_s']:.1f} s  "
        f"busy {run['cpu_busy_fraction']:.0%} (+{run['other_cpu_s']:.1f} s other CPU)",
        flush=True,
    )


def run_rounds(args: argparse.Namespace, collected: Collected, row: list[float]) -> None:
    """Every connection count: ``repeats`` rounds, each series once per round, order rotated."""
    series = collected.series
    if not series:
        print("nothing to measure: every series was skipped", file=sys.stderr)
        return
    for connections in args.connections:
        for index in range(args.repeats):
            # Wait (bounded) for other users of the machine to quiet down; record how it was.
            quiet = settle(args.settle)
            collected.rounds.append({"connections": connections, "round": index, **quiet})
            shift = index % len(series)
            for one in series[shift:] + series[:shift]:
                label = f"{one.name:<38} c={connections:<3} round {index + 1}/{args.repeats}"
                try:
                    run = measure(one, connections, args, collected, row)
                except (BenchmarkError, WrkFailed, h2load_grpc.H2loadFailed, OSError) as exc:
                    failure = {
                        "series": one.name,
                        "connections": connections,
                        "round": index,
                        "error": str(exc),
                    }
                    collected.server(one.server)["failures"].append(failure)
                    print(f"{label}: failed: {exc}", file=sys.stderr, flush=True)
                    continue
                run["round"] = index
                collected.runs.setdefault((one.name, connections), []).append(run)
                _progress(label, run)
