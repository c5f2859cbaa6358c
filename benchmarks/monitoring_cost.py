"""Capture and metrics cost: the same model on two ``modelyard serve`` servers, one capturing
100 % of its requests with every metric on, one with capture and metrics off, in one run.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.
The issue's target: capture at 100 % sampling with all metrics on costs at most 5 % of
throughput, against the same server with them off, at 1 and 64 connections.

What it does, in a temporary work folder:

1. Trains ``serving.py``'s model (XGBoost, 100 trees, depth 6, 30 features) and prepares it
   twice as ``serving.py`` does (same registration, same endpoint with the same batching),
   each on its own home: ``monitored`` is created with ``--capture 100`` and served with
   ``MODELYARD_METRICS=true``; ``plain`` has no capture and ``MODELYARD_METRICS=false``.
2. Starts both servers (``--workers``, default 2, each in its own process group) and checks
   each answers the model's prediction. For each connection count (default 1 and 64) it runs
   ``--rounds`` rounds; in each round both servers get a short wrk warm-up and one measured
   run, the order swapped from round to round so that a shared machine's slow minutes fall on
   both. The ratio monitored/plain is taken within each round; the medians are reported. The
   servers' CPU time (each whole session) and the machine's are read around every run, so
   CPU per request and other users' CPU are on record (the idle servers' too), and so is the
   CPU of the metrics drain's and the capture writer's threads (every server starts with
   ``thread_names/`` on ``PYTHONPATH``, so that their OS threads carry those names). A round in
   which other work used more than a tenth of a core during either run is left out of the
   ratios and medians (kept in the JSON), unless fewer than two rounds are left. ``--split``
   adds two servers, ``capture-only`` and ``metrics-only``, to tell what each part costs.
   The target reads ``met`` only when the median cost's interval (``verdict.py``: from the
   rounds' spread, at least 90 % confidence; five rounds give the lowest to the highest cost)
   is at or under 5 %, ``missed`` when it is all above, and ``undecided`` otherwise.
3. Proves capture ran: reads ``GET /metrics`` of the monitored server (requests answered, the
   metrics' own drops and drain CPU, captured rows by outcome), stops the servers (a worker
   writes its queued captures when it stops), then counts the rows in every captured Parquet
   file and checks one file's columns. ``capture_dropped_rows`` = requests answered - rows
   written (one row per request).
4. Measures what a queued capture holds per row (tracemalloc, records built as the request
   path builds them) to state the queue's memory bound: ``capture_queue_rows`` x bytes/row.
5. Writes JSON (``--out``) and prints a summary.

Needs ``wrk`` (``apt-get install -y wrk``). Run (from the repository root)::

    .venv/bin/python benchmarks/monitoring_cost.py            # 5 rounds x 10 s, ~5 minutes
    .venv/bin/python benchmarks/monitoring_cost.py --quick    # 1 round x 3 s
    .venv/bin/python benchmarks/monitoring_cost.py --split    # 4 servers, ~10 minutes
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import serving as bench
from alternating import idle_cpu as _idle_cpu
from alternating import order as _order
from machine import machine_info
from serverproc import BenchmarkError, http_request, machine_cpu_seconds
from threadcpu import THREAD_NAMES_SITE, named_threads
from verdict import describe, verdict
from wrkload import WrkFailed, run_wrk, wrk_version

DEFAULT_OUT = bench.BENCH_DIR / "results" / "monitoring_cost.json"
TARGET_COST = 0.05  # at most 5 % of throughput
SETTINGS = {
    "monitored": {"create_args": ["--capture", "100"], "MODELYARD_METRICS": "true"},
    "plain": {"create_args": [], "MODELYARD_METRICS": "false"},
    # With --split: each part alone, to tell what each costs.
    "capture-only": {"create_args": ["--capture", "100"], "MODELYARD_METRICS": "false"},
    "metrics-only": {"create_args": [], "MODELYARD_METRICS": "true"},
}
BASELINE = "plain"
BUSY_LOAD = 0.5  # a 1-minute load average above this at the start: other work is running
QUIET_OTHER_CORES = 0.1  # a run during which other work used more is left out of the ratios
#: The monitoring threads whose CPU is read per run, by their OS name's first 15 bytes: the
#: metrics drain (and its flush thread, ``modelyard-metrics-flush``) and the capture writer.
THREADS = {
    "drain_thread_us_per_request": "modelyard-metri",
    "capture_thread_us_per_request": "modelyard-captu",
}
METRICS_SETTLE_S = 30.0  # for /metrics to count every answered request (drains every second)
QUEUE_SAMPLE = 20_000  # records queued to measure bytes per row


# --------------------------------------------------------------------------------------------
# The two servers


def prepare(name: str, assets: bench.Assets) -> tuple[bench.Launcher, Path]:
    """One server's home (under its own folder) and launcher; also returns the home."""
    workdir = assets.workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    setting = SETTINGS[name]
    launcher = bench.prepare_modelyard(
        replace(assets, workdir=workdir), create_args=setting["create_args"]
    )
    metrics = setting["MODELYARD_METRICS"]

    def make(port: int, workers: int) -> bench.Launch:
        launch = launcher.make(port, workers)
        path = ":".join(filter(None, [str(THREAD_NAMES_SITE), launch.env.get("PYTHONPATH", "")]))
        return replace(launch, env={**launch.env, "MODELYARD_METRICS": metrics, "PYTHONPATH": path})

    details = {
        **launcher.details,
        "MODELYARD_METRICS": metrics,
        "PYTHONPATH": "benchmarks/thread_names (+ the caller's): threads named, to read their CPU",
    }
    return replace(launcher, make=make, details=details), workdir / "modelyard-home"


def wait_quiet(max_s: float) -> dict[str, float]:
    """Wait (up to ``max_s``) until the machine has been nearly idle for 2 s: less than
    ``QUIET_OTHER_CORES`` of a core busy (the servers idle between runs). What was seen."""
    began = time.monotonic()
    while True:
        busy0, total0 = machine_cpu_seconds()
        time.sleep(2.0)
        busy1, total1 = machine_cpu_seconds()
        cores = (busy1 - busy0) / (total1 - total0) * bench.cpu_count()
        waited = time.monotonic() - began
        if cores < QUIET_OTHER_CORES or waited >= max_s:
            return {"waited_s": waited, "busy_cores": cores}
        time.sleep(3.0)


def run_rounds(
    args: argparse.Namespace, running: dict[str, bench.Running], body: bytes
) -> list[dict[str, Any]]:
    """Every connection count: ``args.rounds`` rounds of one measured run per server."""
    rows = []
    series = list(running)
    for connections in args.connections:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in series}
        for index in range(args.rounds):
            seen = None
            if args.wait_quiet:
                seen = wait_quiet(args.wait_quiet)
                print(f"round {index + 1}: waited {seen['waited_s']:.0f} s for a quiet machine "
                      f"({seen['busy_cores']:.2f} cores busy)", flush=True)  # fmt: skip
            for name in _order(series, index):
                this = running[name]
                url = this.launch.invoke_url
                run_wrk(url, body, connections=connections, duration_s=args.warmup)
                idle_before = _idle_cpu(running, name)
                load_before = os.getloadavg()[0]
                run = measured_run(this, body, connections, args.duration)
                run["idle_peer_cpu_s"] = _idle_cpu(running, name) - idle_before
                run["load_average_1m_before"] = load_before
                run["round"] = index + 1
                run["quiet_wait"] = seen
                runs[name].append(run)
                print(
                    f"c={connections:<3} round {index + 1}/{args.rounds} {name:<12}: "
                    f"{run['rps']:8.0f} rps  p50 {run['p50_ms']:6.2f} ms  p99 "
                    f"{run['p99_ms']:6.2f} ms  cpu {run['cpu_us_per_request'] or 0:5.0f} us/req"
                    f"  (drain {run['drain_thread_us_per_request']:.2f}, capture "
                    f"{run['capture_thread_us_per_request']:.2f})"
                    f"  errors {run['errors']['total']}  others' cpu "
                    f"{max(0.0, run['other_cpu_s'] - run['idle_peer_cpu_s']):.1f} s",
                    flush=True,
                )
        rows.append(summarise(connections, runs))
    return rows


def measured_run(running: bench.Running, body: bytes, connections: int, seconds: int) -> dict:
    """``serving.py``'s measured run, with the CPU of the drain's and the capture writer's
    threads (named by ``thread_names``) read around it, per request (``THREADS``' keys)."""
    before = named_threads(running.server.pid, list(THREADS.values()))
    run = bench.measured_run(running, body, connections, seconds)
    after = named_threads(running.server.pid, list(THREADS.values()))
    requests = run["requests"] or 1
    for key, prefix in THREADS.items():
        run[key] = (after[prefix].cpu_s - before[prefix].cpu_s) / requests * 1e6
    return run


def quiet(run: dict[str, Any]) -> bool:
    """Whether other processes (not this server, wrk or the idle servers) used less than
    ``QUIET_OTHER_CORES`` of a core during the run."""
    others = run["other_cpu_s"] - run.get("idle_peer_cpu_s", 0.0)
    return others <= QUIET_OTHER_CORES * run["duration_s"]


def against_plain(on: list[dict[str, Any]], off: list[dict[str, Any]]) -> dict[str, Any]:
    """A server's runs against the plain server's, round by round; rounds where either run
    shared the machine with other work are left out (unless fewer than two are left)."""
    pairs = list(zip(on, off, strict=True))
    calm = [(a, b) for a, b in pairs if quiet(a) and quiet(b)]
    used = calm if len(calm) >= 2 else pairs
    rps_ratios = [a["rps"] / b["rps"] for a, b in used]
    cpu_added = [
        a["cpu_us_per_request"] - b["cpu_us_per_request"]
        for a, b in used
        if a["cpu_us_per_request"] is not None and b["cpu_us_per_request"] is not None
    ]
    ratio = statistics.median(rps_ratios)
    return {
        "rps_ratio_per_round": [a["rps"] / b["rps"] for a, b in pairs],
        "quiet_rounds": [a["round"] for a, b in calm],
        "rounds_used": [a["round"] for a, b in used],
        "rps_ratio": ratio,
        "throughput_cost": 1.0 - ratio,
        # The median cost's interval from the rounds' spread, and met / missed / undecided.
        **verdict([1.0 - r for r in rps_ratios], TARGET_COST),
        "cpu_us_per_request_added": statistics.median(cpu_added) if cpu_added else None,
    }


def summarise(connections: int, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per server, and each server against the plain one within each round."""
    metrics = (
        "rps",
        "p50_ms",
        "p99_ms",
        "cpu_us_per_request",
        "other_cpu_s",
        "idle_peer_cpu_s",
        *THREADS,
    )
    calm = {name: [r for r in rs if quiet(r)] for name, rs in runs.items()}
    chosen = {name: calm[name] if len(calm[name]) >= 2 else rs for name, rs in runs.items()}
    medians = {
        name: {m: statistics.median(r[m] for r in rs if r[m] is not None) for m in metrics}
        | {"runs": len(rs)}
        for name, rs in chosen.items()
    }
    compared = {n: against_plain(rs, runs[BASELINE]) for n, rs in runs.items() if n != BASELINE}
    main = compared["monitored"]
    return {
        "connections": connections,
        "medians": medians,
        **main,
        "rps_ratio_of_medians": medians["monitored"]["rps"] / medians[BASELINE]["rps"],
        "parts": {n: c for n, c in compared.items() if n != "monitored"},
        "errors": {n: sum(r["errors"]["total"] for r in rs) for n, rs in runs.items()},
        "target": f"throughput cost <= {TARGET_COST:.0%}",
        # The median alone; ``verdict`` says whether the rounds' spread allows a reading.
        "target_met": main["throughput_cost"] <= TARGET_COST,
        "runs": runs,
    }


# --------------------------------------------------------------------------------------------
# Proof that capture and metrics ran


def scrape(base_url: str) -> dict[str, float]:
    """Sums of the samples of ``GET /metrics`` that tell what was served and dropped."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_request(f"{base_url}/metrics")
    if status != 200:
        return {"status": float(status)}
    wanted = (
        "modelyard_requests_total",
        "modelyard_request_errors_total",
        "modelyard_metrics_dropped_total",
        "modelyard_metrics_drain_cpu_seconds_total",
        "modelyard_workers",
        "modelyard_capture_queue_rows",
    )
    found = dict.fromkeys(wanted, 0.0)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name in found:
                found[sample.name] += sample.value
            elif sample.name == "modelyard_capture_rows_total":  # by outcome
                key = f"modelyard_capture_rows_total:{sample.labels.get('outcome')}"
                found[key] = found.get(key, 0.0) + sample.value
    return found


def settled_scrape(base_url: str) -> dict[str, float]:
    """``scrape`` once two reads 1 s apart agree on the request count (drains caught up)."""
    deadline = time.monotonic() + METRICS_SETTLE_S
    last = scrape(base_url)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = scrape(base_url)
        if now.get("modelyard_requests_total") == last.get("modelyard_requests_total"):
            return now
        last = now
    return last


def captured(home: Path) -> dict[str, Any]:
    """Rows and files under a home's capture folder, and one file's columns."""
    import pyarrow.parquet as pq

    from modelyard.config import load_settings

    root = Path(load_settings({}, home=home).resolved_capture_url)
    files = sorted(root.rglob("*.parquet"))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    columns = pq.ParquetFile(files[0]).schema_arrow.names if files else []
    return {
        "folder": str(root.relative_to(home.parent.parent)),
        "files": len(files),
        "rows": rows,
        "bytes": sum(f.stat().st_size for f in files),
        "columns_of_first_file": columns,
    }


def base_url(running: bench.Running) -> str:
    return running.launch.invoke_url.split("/endpoints/")[0]


# --------------------------------------------------------------------------------------------
# The capture queue's memory


class _Nowhere:
    """A destination never written to (the writer is never started)."""

    url = "nowhere"

    def write(self, path: str, data: bytes) -> None:
        raise OSError("not used")


def queue_bytes_per_row(body: bytes, expected: float) -> dict[str, Any]:
    """Bytes a queued one-row capture holds, both ways a call can wait: on the capture writer's
    own queue (capture without metrics), and in the metrics' buffer with its capture fields
    (capture and metrics, as the monitored server runs). Each record as the request path makes
    it: rows decoded from the benchmark body, a fresh inference id, the prediction as a view
    into the batch's answer, times from the clock."""
    from modelyard.codecs.payloads import decode
    from modelyard.config import Settings
    from modelyard.domain.inference_ids import new_inference_id
    from modelyard.serving.calls import CallBuffer
    from modelyard.serving.capture import CaptureRecord
    from modelyard.serving.capture_writer import CaptureWriter
    from modelyard.serving.stack import RequestMeta

    variant: Any = object()  # one variant route, shared by every record
    answer = np.full(64, expected)  # a batch's answer; each call's prediction is a view

    def own_queue() -> tuple[int, Any]:
        writer = CaptureWriter(_Nowhere(), max_rows=QUEUE_SAMPLE)
        for i in range(QUEUE_SAMPLE):
            meta = RequestMeta(endpoint=bench.MODELYARD_ENDPOINT, inference_id=new_inference_id())
            rows = decode(body, "application/json", None)
            view = answer[i % 64 : i % 64 + 1]
            writer.offer(CaptureRecord(meta, variant, rows, view, 0.001, time.time()))
        return writer.pending_rows, writer

    def shared() -> tuple[int, Any]:
        calls = CallBuffer(QUEUE_SAMPLE)
        dense = [c.append for c in calls.dense]
        sparse = [c.append for c in calls.sparse]
        for i in range(QUEUE_SAMPLE):
            rows = decode(body, "application/json", None)
            view = answer[i % 64 : i % 64 + 1]
            for append, value in zip(
                sparse,
                (calls.added, new_inference_id(), "sagemaker", time.perf_counter(), 0.001),
                strict=True,
            ):
                append(value)
            for append, value in zip(
                dense, (variant, str(bench.MODELYARD_ENDPOINT), rows, view), strict=True
            ):
                append(value)
            calls.added += 1
        return len(calls), calls

    measured = {}
    for name, fill in (("own_queue", own_queue), ("shared_with_metrics", shared)):
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        rows, held = fill()  # held alive while measured
        measured[name] = (tracemalloc.get_traced_memory()[0] - before) / rows
        tracemalloc.stop()
        del held
    per_row = max(measured.values())
    queue_rows = Settings.model_fields["capture_queue_rows"].default
    return {
        "records_measured": QUEUE_SAMPLE,
        "bytes_per_row": per_row,
        "bytes_per_row_by_way": measured,
        "capture_queue_rows": queue_rows,
        "queue_bound_mib_per_worker": queue_rows * per_row / 2**20,
        "how": "tracemalloc around the queued one-row records (30 features) of each way a "
        "call waits for the capture writer; the bound uses the larger",
    }


# --------------------------------------------------------------------------------------------
# Run


def serve_both(
    args: argparse.Namespace, assets: bench.Assets, stack: ExitStack, collected: bench.Collected
) -> Iterator[tuple[str, bench.Running, Path]]:
    """Prepare and start the servers (stopped when ``stack`` closes)."""
    for name in args.series:
        launcher, home = prepare(name, assets)
        collected.server(name)["details"] = launcher.details
        running = stack.enter_context(
            bench.serving(name, launcher, args.workers, assets, collected, name)
        )
        yield name, running, home


def measure(args: argparse.Namespace, assets: bench.Assets) -> dict[str, Any]:
    """Both servers, the rounds, and the proof; the report's measured part."""
    collected = bench.Collected()
    homes: dict[str, Path] = {}
    result: dict[str, Any] = {"servers": collected.servers}
    with ExitStack() as stack:
        running = {}
        for name, run, home in serve_both(args, assets, stack, collected):
            running[name], homes[name] = run, home
        result["results"] = run_rounds(args, running, assets.body)
        result["metrics_monitored"] = settled_scrape(base_url(running["monitored"]))
        result["metrics_plain_status"] = http_request(f"{base_url(running['plain'])}/metrics")[0]
    # Stopped: every worker has written what it had queued.
    result["capture"] = {name: captured(homes[name]) for name in homes}
    metrics = result["metrics_monitored"]
    served = metrics.get("modelyard_requests_total", 0.0)
    errors = metrics.get("modelyard_request_errors_total", 0.0)
    rows = result["capture"]["monitored"]["rows"]
    result["capture_check"] = {
        "requests_answered": served,
        "request_errors": errors,
        "rows_captured": rows,
        "capture_dropped_rows": served - errors - rows,
        "captured_share": rows / (served - errors) if served > errors else None,
        "plain_rows_captured": result["capture"]["plain"]["rows"],
        # The workers' own counts, read before they stopped (rows still queued then were
        # written at shutdown, so "written" may be short of the files' rows by those).
        "metrics_captured_rows": metrics.get("modelyard_capture_rows_total:captured"),
        "metrics_dropped_rows": metrics.get("modelyard_capture_rows_total:dropped"),
        "metrics_written_rows": metrics.get("modelyard_capture_rows_total:written"),
        "metrics_failed_rows": metrics.get("modelyard_capture_rows_total:failed"),
        "note": "requests answered and errors from the monitored server's /metrics; rows from "
        "its Parquet files after it stopped; one row per request",
    }
    return result


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
        "--split", action="store_true", help="also capture alone and metrics alone (4 servers)"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each round, wait up to SECONDS for other work on the machine to stop",
    )
    args = parser.parse_args(argv)
    args.series = list(SETTINGS) if args.split else ["monitored", BASELINE]
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3, 1
    if min([args.rounds, args.duration, args.warmup, args.workers, *args.connections]) < 1:
        parser.error("rounds, durations, workers and connections must be positive")
    return args


def print_summary(report: dict[str, Any]) -> None:
    for row in report.get("results", []):
        on, off = row["medians"]["monitored"], row["medians"]["plain"]
        print(
            f"c={row['connections']:<3} monitored {on['rps']:8.0f} rps (p50 {on['p50_ms']:.2f} "
            f"p99 {on['p99_ms']:.2f} ms)  plain {off['rps']:8.0f} rps (p50 {off['p50_ms']:.2f} "
            f"p99 {off['p99_ms']:.2f} ms)  ratio {row['rps_ratio']:.3f}  cost "
            f"{row['throughput_cost']:+.1%}  +{row['cpu_us_per_request_added'] or 0:.0f} CPU "
            f"us/req  (rounds {row['rounds_used']}; quiet {row['quiet_rounds']})"
        )
        print(f"      target {describe(row)}")
        print(
            f"      monitored's threads per request: drain "
            f"{on['drain_thread_us_per_request']:.2f} us, capture writer "
            f"{on['capture_thread_us_per_request']:.2f} us"
        )
        for name, part in row["parts"].items():
            print(
                f"      {name}: ratio {part['rps_ratio']:.3f}  cost {part['throughput_cost']:+.1%}"
                f"  +{part['cpu_us_per_request_added'] or 0:.0f} CPU us/req"
            )
    check = report.get("capture_check")
    if check:
        print(
            f"capture: {check['rows_captured']} rows of {check['requests_answered']:.0f} "
            f"requests answered, {check['capture_dropped_rows']:.0f} dropped; queue bound "
            f"{report['capture_queue']['queue_bound_mib_per_worker']:.1f} MiB per worker"
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: run `apt-get install -y wrk` (Debian package)", file=sys.stderr
        )
        return 2
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    packages = ("modelyard", "numpy", "orjson", "pyarrow", "prometheus-client", "starlette",
                "uvicorn", "uvloop", "httptools", "xgboost")  # fmt: skip
    machine = {**machine_info(*packages), "wrk": wrk_version()}
    started = datetime.now(UTC)
    if machine["load_average_at_start"][0] > BUSY_LOAD:
        print(f"note: load average {machine['load_average_at_start']} at the start", flush=True)
    report: dict[str, Any] = {"benchmark": "monitoring_cost", "started_at": started.isoformat()}
    with tempfile.TemporaryDirectory(prefix="modelyard-monitoring-cost-") as tmp:
        assets = bench.build_assets(Path(tmp))
        report["capture_queue"] = queue_bytes_per_row(assets.body, assets.expected)
        try:
            report.update(measure(args, assets))
        except (BenchmarkError, WrkFailed) as exc:
            report["error"] = str(exc)
            print(f"failed: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            report["interrupted"] = True
    machine["load_average_at_end"] = os.getloadavg()
    machine["busy_at_start"] = machine["load_average_at_start"][0] > BUSY_LOAD
    report.update(
        finished_at=datetime.now(UTC).isoformat(),
        machine=machine,
        parameters={
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "workers": args.workers,
            "wait_quiet_s": args.wait_quiet,
            "quiet": f"a run counts as quiet when other work used <= {QUIET_OTHER_CORES} core",
            "servers": {n: SETTINGS[n] for n in args.series},
            "model": "serving.py's: XGBoost 100 trees depth 6, 30 features, one-row JSON body",
            "load_generator": "wrk (benchmarks/wrk_post.lua), threads min(connections, 2), "
            "on the same 2-core machine",
        },
    )
    bench.write_json(args.out, report)
    print_summary(report)
    print(f"wrote {args.out}")
    return 130 if report.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
