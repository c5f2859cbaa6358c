"""Guardrails cost: what routing between a canary's variants, a shadow at 100 % and a running
guarded deployment cost a server, against the same model on a plain endpoint, in one run.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.
Issue 12's target: the routing decision, shadow fan-out at 100 % and deployment bookkeeping
together cost at most 3 % of throughput, against the plain endpoint in the same run; the
shadow's own predictions are not counted, and are reported separately.

What it does, in a temporary work folder (servers: ``guardrails_servers.py``):

1. Trains ``serving.py``'s model (XGBoost, 100 trees, depth 6, 30 features) and serves it
   from two ``modelyard serve`` servers (``--workers``, default 2), both with capture off and
   metrics off: ``plain`` (one variant) and ``guarded``, whose endpoint is left mid-canary by a
   real deployment (``main`` 90 %, ``main.next`` 10 %, a step wait that outlasts the run, so
   the controller in that server keeps evaluating it) with a ``shadow`` variant at 100 %.
   ``--split`` adds ``canary-only`` (deployed the same way, no shadow), to tell the routing
   and bookkeeping from the shadow fan-out (``parts`` in the JSON: each against ``plain``).
2. Before measuring: 200 requests to each on new connections must all be answered with the
   model's prediction by an allowed variant (``x-modelyard-variant``; both canary variants
   must show up), and after a short load the shadow's prediction thread must have used CPU.
3. For each connection count (default 1 and 64), ``--rounds`` rounds: each server gets a wrk
   warm-up and one measured run, in an order that alternates from round to round. Around each
   run: throughput, p50/p99, the server's CPU (its whole session: workers, the scheduler that
   runs the controller, uvicorn's parent; also split by process), and the CPU of the threads
   the shadow predicts on. Copies still queued when wrk stops are predicted after the reads,
   so neither the server's CPU nor the shadow thread's counts them (the next server's warm-up
   runs meanwhile).
4. Reports, as medians of per-round ratios (rounds where other work used more than a tenth of
   a core left out, unless fewer than two remain):

   - ``rps_ratio``: guarded / plain throughput, raw (the shadow's predictions included: on a
     saturated machine they take cores the answers could have used);
   - ``cost_excluding_shadow``, the figure for the target, computed from CPU:
     ``(guarded CPU/req - shadow-thread CPU/req) / (plain CPU/req) - 1``. The shadow's
     predictions are the CPU of its prediction thread (the deployer's ``shadow_executor``,
     ``modelyard-shadow_0``), read per thread from ``/proc/<pid>/task/<tid>/stat`` in every
     process of the guarded server's session; everything else the copies cost (queueing, the
     consumer tasks, micro-batching on the event loop) stays counted. As a throughput figure:
     ``implied_rps_ratio = 1 / (1 + cost)``, which holds when the server is CPU-bound (64
     connections), not at 1 connection, where the raw ratio is the better reading;
   - ``cost_including_shadow``: guarded / plain CPU per request - 1;
   - the target's ``verdict`` (``verdict.py``): ``met`` only when the interval of the median
     ``cost_excluding_shadow`` (from the rounds' spread, at least 90 % confidence: five rounds
     give the lowest to the highest) is at or under 3 %, ``missed`` when it is all above,
     else ``undecided``.
5. Counts the shadow's predictions and dropped copies (``guardrails_check.py``): the guarded
   home served again with metrics on, one counted run per connection count; predictions per
   second, CPU per prediction, ``modelyard_shadow_dropped_total``, the canary's actual split.
6. Writes JSON (``--out``) and prints a summary.

Python 3.11 names no OS thread: both servers start with ``thread_names/sitecustomize.py`` on
``PYTHONPATH``, which names each thread after its Python name (once, at its start).

Needs ``wrk`` (``apt-get install -y wrk``). Run (from the repository root)::

    .venv/bin/python benchmarks/guardrails_cost.py            # 5 rounds x 10 s, ~5 minutes
    .venv/bin/python benchmarks/guardrails_cost.py --quick --out /tmp/guardrails_cost.json
    .venv/bin/python benchmarks/guardrails_cost.py --split    # 3 servers, ~8 minutes
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import guardrails_servers as servers
import serving as bench
from alternating import idle_cpu, order
from guardrails_check import SHADOW_THREADS, shadow_counts
from guardrails_report import TARGET_COST, print_summary, summarise
from machine import machine_info
from monitoring_cost import BUSY_LOAD, QUIET_OTHER_CORES, wait_quiet
from serverproc import BenchmarkError, ServerFailed
from threadcpu import cpu_by_process, named_threads
from wrkload import WrkFailed, run_wrk, wrk_version

DEFAULT_OUT = bench.BENCH_DIR / "results" / "guardrails_cost.json"
PREDICT_THREADS = "modelyard-pred"  # "modelyard-predict_0": the answering variants' predicts
SANITY_REQUESTS = 200
#: The server's processes by what their command line holds (uvicorn's parent and
#: multiprocessing's resource tracker are "rest").
PROCESS_ROLES = {"workers": "multiprocessing.spawn", "scheduler": " scheduler "}


def thread_cpu(running: bench.Running) -> dict[str, Any]:
    """The server's shadow and predict threads now (CPU seconds and how many), and the CPU
    seconds of its processes by role."""
    found = named_threads(running.server.pid, [SHADOW_THREADS, PREDICT_THREADS])
    roles = cpu_by_process(running.server.pid, PROCESS_ROLES)
    return {
        **{f"{role}_cpu_s": cpu for role, cpu in roles.items()},
        "shadow_cpu_s": found[SHADOW_THREADS].cpu_s,
        "shadow_threads": found[SHADOW_THREADS].threads,
        "shadow_processes": list(found[SHADOW_THREADS].processes),
        "predict_cpu_s": found[PREDICT_THREADS].cpu_s,
        "predict_threads": found[PREDICT_THREADS].threads,
    }


def measured_run(running: bench.Running, body: bytes, connections: int, seconds: int) -> dict:
    """``serving.py``'s measured run, with the named threads' CPU read around it."""
    before = thread_cpu(running)
    run = bench.measured_run(running, body, connections, seconds)
    after = thread_cpu(running)
    requests = run["requests"] or 1
    for part in ("shadow", "predict"):
        used = after[f"{part}_cpu_s"] - before[f"{part}_cpu_s"]
        run[f"{part}_thread_cpu_s"] = used
        run[f"{part}_thread_cpu_us_per_request"] = used / requests * 1e6
    for role in (*PROCESS_ROLES, "rest"):
        used = after[f"{role}_cpu_s"] - before[f"{role}_cpu_s"]
        run[f"{role}_cpu_us_per_request"] = used / requests * 1e6
    run["shadow_threads"] = after["shadow_threads"]
    return run


def run_rounds(
    args: argparse.Namespace, running: dict[str, bench.Running], body: bytes
) -> list[dict[str, Any]]:
    """Every connection count: ``args.rounds`` rounds of one measured run per server."""
    rows = []
    for connections in args.connections:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.series}
        for index in range(args.rounds):
            seen = wait_quiet(args.wait_quiet) if args.wait_quiet else None
            for name in order(args.series, index):
                this = running[name]
                run_wrk(
                    this.launch.invoke_url, body, connections=connections, duration_s=args.warmup
                )
                idle_before = idle_cpu(running, name)
                load_before = os.getloadavg()[0]
                run = measured_run(this, body, connections, args.duration)
                run.update(
                    idle_peer_cpu_s=idle_cpu(running, name) - idle_before,
                    load_average_1m_before=load_before,
                    round=index + 1,
                    quiet_wait=seen,
                )
                runs[name].append(run)
                print(
                    f"c={connections:<3} round {index + 1}/{args.rounds} {name:<11}: "
                    f"{run['rps']:8.0f} rps  p50 {run['p50_ms']:6.2f} ms  p99 "
                    f"{run['p99_ms']:6.2f} ms  cpu {run['cpu_us_per_request'] or 0:5.0f} us/req"
                    f"  shadow {run['shadow_thread_cpu_us_per_request']:4.0f} us/req  errors "
                    f"{run['errors']['total']}  others' cpu "
                    f"{max(0.0, run['other_cpu_s'] - run['idle_peer_cpu_s']):.1f} s",
                    flush=True,
                )
        rows.append(summarise(connections, runs))
    return rows


def check_shadow_ran(running: bench.Running, body: bytes, connections: int, seconds: int) -> dict:
    """A short load on the guarded server; its shadow thread must have used CPU meanwhile.
    Raises ServerFailed otherwise."""
    before = thread_cpu(running)
    run_wrk(running.launch.invoke_url, body, connections=connections, duration_s=seconds)
    after = thread_cpu(running)
    used = after["shadow_cpu_s"] - before["shadow_cpu_s"]
    found = {**after, "connections": connections, "seconds": seconds, "shadow_cpu_s_used": used}
    if used <= 0:
        raise ServerFailed(f"the shadow's thread used no CPU under load: {found}")
    return found


def start(
    args: argparse.Namespace, assets: bench.Assets, stack: ExitStack, collected: bench.Collected
) -> tuple[dict[str, bench.Running], dict[str, Any], bench.Launcher]:
    """Prepare and start both servers, start the deployment, run the checks before measuring;
    the servers (stopped when ``stack`` closes), the checks' findings, guarded's launcher."""
    running, setup = {}, {}
    launchers = {name: servers.prepare(name, assets) for name in args.series}
    for name, launcher in launchers.items():
        collected.server(name)["details"] = launcher.details
        running[name] = stack.enter_context(
            bench.serving(name, launcher, args.workers, assets, collected, name)
        )
    for name in servers.DEPLOYED:
        if name in launchers:
            shadow = name == "guarded"
            started = servers.start_canary(launchers[name], args.deployment_wait, shadow)
            reached = servers.wait_mid_canary(launchers[name], running[name], shadow)
            setup[name] = {"deployment_started": started, "mid_canary": reached}
            print(f"{name}: deployment at {reached['deployment']['current_step']}", flush=True)
    setup["sanity"] = {
        name: servers.sample_variants(r, assets.body, assets.expected, SANITY_REQUESTS)
        for name, r in running.items()
    }
    # Also proves the threads carry their names (both servers start the same way).
    setup["shadow_ran"] = check_shadow_ran(
        running["guarded"], assets.body, max(args.connections), args.warmup
    )
    for name in running.keys() - {"guarded"}:
        threads = thread_cpu(running[name])
        if threads["shadow_threads"]:
            raise ServerFailed(f"{name}: has shadow threads: {threads}")
        setup.setdefault("threads", {})[name] = threads
    answered = {name: found["variants"] for name, found in setup["sanity"].items()}
    ran = setup["shadow_ran"]
    print(f"answered by: {answered}; shadow threads: {ran['shadow_threads']} in "
          f"{len(ran['shadow_processes'])} worker(s), {ran['shadow_cpu_s_used']:.2f} CPU s "
          f"under {ran['seconds']} s of load", flush=True)  # fmt: skip
    return running, setup, launchers["guarded"]


def measure(args: argparse.Namespace, assets: bench.Assets, report: dict[str, Any]) -> None:
    """Both servers, the rounds, then the counted check; into ``report`` as they come."""
    collected = bench.Collected()
    report["servers"] = collected.servers
    with ExitStack() as stack:
        running, report["setup"], guarded = start(args, assets, stack, collected)
        report["results"] = run_rounds(args, running, assets.body)
        report["deployment_after_rounds"] = servers.deployment_state(guarded)
    if not args.no_check:
        counting = servers.with_env(guarded, metrics=True)
        collected.server("guarded-metrics")["details"] = counting.details
        report["shadow_check"] = shadow_counts(args, counting, assets, collected)
        report["deployment_after_check"] = servers.deployment_state(guarded)


def deployment_wait(args: argparse.Namespace) -> str:
    """The canary step's wait: 1 h, or twice the planned run when that is longer."""
    per_round = 3 * (args.warmup + args.duration + 5) + args.wait_quiet
    planned_s = len(args.connections) * args.rounds * per_round + 600
    return f"{max(60, math.ceil(2 * planned_s / 60))}m"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before every run")
    parser.add_argument("--connections", type=bench._int_list, default=[1, 64])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    parser.add_argument(
        "--split", action="store_true", help="also a canary without the shadow (3 servers)"
    )
    parser.add_argument(
        "--no-check", action="store_true", help="skip the metrics-on count of the shadow's work"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each round, wait up to SECONDS for other work on the machine to stop",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3, 1
    if min([args.rounds, args.duration, args.warmup, args.workers, *args.connections]) < 1:
        parser.error("rounds, durations, workers and connections must be positive")
    args.series = ["guarded", "plain", *(["canary-only"] if args.split else [])]
    args.deployment_wait = deployment_wait(args)
    return args


METHOD = {
    "rps_ratio": "guarded / plain requests per second, per round, median (shadow included)",
    "cost_excluding_shadow": "(guarded CPU/req - shadow-thread CPU/req) / (plain CPU/req) - 1, "
    "per round, median; CPU/req = utime+stime of the server's whole session over the run's "
    "requests; shadow-thread CPU = utime+stime of the threads named modelyard-shadow_* (the "
    "shadow variants' predict thread) in every process of the guarded server, from "
    "/proc/<pid>/task/<tid>/stat; the target applies to this figure",
    "implied_rps_ratio": "1 / (1 + cost_excluding_shadow): the throughput ratio if the server "
    "were CPU-bound (64 connections); at 1 connection read rps_ratio",
    "cost_including_shadow": "guarded CPU/req / plain CPU/req - 1",
    "shadow_counts": "from a metrics-on run of the guarded home after the rounds "
    "(guardrails_check.py): modelyard_requests_total of the shadow variant, "
    "modelyard_shadow_dropped_total, shadow-thread CPU per prediction",
    "processes": "workers_/scheduler_/rest_cpu_us_per_request: the session's CPU split by "
    "process (the workers; the scheduler process, which runs the deployment controller; "
    "uvicorn's parent and the resource tracker), each run's CPU over its requests",
    "parts": "--split only: canary-only (mid-canary, no shadow) against plain the same way, "
    "over the rounds the main figures use; guarded minus canary-only is the shadow fan-out",
    "predict_thread": "predict_thread_cpu_us_per_request, for context only: the answering "
    "variants' predict thread (modelyard-predict_*); an idle fast model predicts inline on the "
    "event loop instead (MicroBatcher), so at 1 connection it is near 0. A shadow never "
    "predicts inline: all its predictions are on its thread",
    "thread_names": "both servers start with benchmarks/thread_names on PYTHONPATH "
    "(sitecustomize: OS thread name = Python thread name)",
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `apt-get install -y wrk`", file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    packages = ("modelyard", "numpy", "onnxruntime", "orjson", "starlette", "uvicorn",
                "uvloop", "httptools", "xgboost")  # fmt: skip
    machine = {**machine_info(*packages), "wrk": wrk_version()}
    if machine["load_average_at_start"][0] > BUSY_LOAD:
        print(f"note: load average {machine['load_average_at_start']} at the start", flush=True)
    report: dict[str, Any] = {
        "benchmark": "guardrails_cost",
        "started_at": datetime.now(UTC).isoformat(),
        "target": f"cost_excluding_shadow <= {TARGET_COST:.0%} at every connection count",
        "method": METHOD,
    }
    with tempfile.TemporaryDirectory(prefix="modelyard-guardrails-cost-") as tmp:
        assets = bench.build_assets(Path(tmp))
        try:
            measure(args, assets, report)
        except (BenchmarkError, WrkFailed) as exc:
            report["error"] = str(exc)
            print(f"failed: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            report["interrupted"] = True
    machine["load_average_at_end"] = os.getloadavg()
    report.update(
        finished_at=datetime.now(UTC).isoformat(),
        machine=machine,
        parameters={
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "workers": args.workers,
            "servers": args.series,
            "wait_quiet_s": args.wait_quiet,
            "deployment_wait": args.deployment_wait,
            "quiet": f"a run counts as quiet when other work used <= {QUIET_OTHER_CORES} core",
            "model": "serving.py's: XGBoost 100 trees depth 6, 30 features, one-row JSON body",
            "load_generator": "wrk (benchmarks/wrk_post.lua), threads min(connections, 2), "
            "on the same machine",
        },
    )
    bench.write_json(args.out, report)
    print_summary(report)
    print(f"wrote {args.out}")
    return 130 if report.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
