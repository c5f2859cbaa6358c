"""A bounded gRPC load generator in Python: N processes, one request in flight each.

Each process holds its own Triton client (``tritonclient.grpc.InferenceServerClient``, one
HTTP/2 connection) and calls the synchronous ``infer`` in a closed loop, so N processes keep N
requests in flight, as wrk keeps one per connection. All processes start their warm-up at the
same moment (a barrier), then measure for the same window; only requests that both start and
end inside the window are counted. The parent process reads the server's CPU time (its whole
session, from ``/proc``) and the machine's at the window's edges, and each child its own CPU
time, so the generator's cost is measured alongside the server's.

This is Python on the same 2-core machine as the server: at many streams the generator, not
the server, may be what limits throughput. ``client_cpu_s`` in the result says how much of
the machine it took.

Run as a script (``v2_serving.py`` does), it prints one line ``GRPC_LOAD_RESULT {json}``::

    python grpc_load.py --target 127.0.0.1:8081 --model bench --row 0.1,0.2,... \\
        --streams 64 --warmup 2 --duration 10 --server-pid 1234
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import queue
import signal
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

import numpy as np
import tritonclient.grpc as triton
from serverproc import machine_cpu_seconds, session_cpu_seconds

RESULT_MARKER = "GRPC_LOAD_RESULT "
REQUEST_TIMEOUT_S = 10.0
START_TIMEOUT_S = 120.0  # forking and connecting 64 clients on a busy 2-core machine
INPUT_NAME = "input-0"
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Plan:
    """What every child does: where, what, and for how long."""

    target: str
    model: str
    row: tuple[float, ...]
    warmup_s: float
    duration_s: float


def _die_with_parent() -> None:
    """Ask Linux to kill this child if the generator's parent dies first."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _infer_input(row: Sequence[float]) -> triton.InferInput:
    """The one-row FP64 input, as the Triton client sends it (raw bytes)."""
    data = np.asarray([row], dtype=np.float64)
    tensor = triton.InferInput(INPUT_NAME, list(data.shape), "FP64")
    tensor.set_data_from_numpy(data)
    return tensor


def _child(plan: Plan, barrier: Barrier, start_at: Any, results: Any) -> None:
    """One stream: connect, wait for the others, warm up, then measure until the window ends."""
    _die_with_parent()
    client = triton.InferenceServerClient(plan.target)
    tensor = _infer_input(plan.row)
    barrier.wait(START_TIMEOUT_S)
    window_start = start_at.value + plan.warmup_s
    window_end = window_start + plan.duration_s
    latencies = array("d")
    errors = 0
    first_error = None
    cpu_start = None
    while True:
        began = time.monotonic()
        if began >= window_end:
            break
        if cpu_start is None and began >= window_start:
            cpu_start = time.process_time()
        try:
            client.infer(plan.model, [tensor], client_timeout=REQUEST_TIMEOUT_S)
            failed = False
        except triton.InferenceServerException as exc:
            failed = True
            first_error = first_error or str(exc)[:300]
        ended = time.monotonic()
        if began >= window_start and ended <= window_end:
            if failed:
                errors += 1
            else:
                latencies.append(ended - began)
    cpu_s = time.process_time() - cpu_start if cpu_start is not None else 0.0
    client.close()
    results.put((latencies.tobytes(), errors, cpu_s, first_error))


def _mark_start(start_at: Any) -> None:
    """Barrier action: the moment everyone is connected is the start of the warm-up."""
    start_at.value = time.monotonic()


def _sleep_until(moment: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``moment``."""
    time.sleep(max(0.0, moment - time.monotonic()))


def run(plan: Plan, streams: int, server_pid: int | None) -> dict[str, Any]:
    """Run ``streams`` child processes and aggregate what they measured.

    Returns:
        Counts, latency percentiles (ms), errors, the children's CPU time in the window, and
        the server's and the machine's CPU time over the same window.
    """
    context = multiprocessing.get_context("fork")  # no gRPC channel exists in this process
    start_at = context.Value("d", 0.0)
    barrier = context.Barrier(streams + 1, action=lambda: _mark_start(start_at))
    results = context.Queue()
    children = [
        context.Process(target=_child, args=(plan, barrier, start_at, results), daemon=True)
        for _ in range(streams)
    ]
    for child in children:
        child.start()
    barrier.wait(START_TIMEOUT_S)
    window_start = start_at.value + plan.warmup_s
    _sleep_until(window_start)
    server_before = session_cpu_seconds(server_pid) if server_pid else None
    busy_before, total_before = machine_cpu_seconds()
    _sleep_until(window_start + plan.duration_s)
    server_after = session_cpu_seconds(server_pid) if server_pid else None
    busy_after, total_after = machine_cpu_seconds()
    collected: list[tuple[bytes, int, float, str | None]] = []
    deadline = time.monotonic() + REQUEST_TIMEOUT_S + 30
    while len(collected) < streams:
        try:
            collected.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            break
    for child in children:
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
    latencies_ms = (
        np.concatenate(
            [np.frombuffer(raw, dtype=np.float64) for raw, *_ in collected] or [np.empty(0)]
        )
        * 1e3
    )
    failed_calls = sum(item[1] for item in collected)
    missing = streams - len(collected)  # a child that crashed or never reported
    first_error = next((item[3] for item in collected if item[3]), None)

    def pct(q: float) -> float | None:
        return float(np.percentile(latencies_ms, q)) if latencies_ms.size else None

    return {
        "requests": int(latencies_ms.size),
        "duration_s": plan.duration_s,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": float(latencies_ms.max()) if latencies_ms.size else None,
        "mean_ms": float(latencies_ms.mean()) if latencies_ms.size else None,
        "errors": {
            "failed_calls": failed_calls,
            "streams_missing": missing,
            "total": failed_calls + missing,
        },
        "first_error": first_error,
        "streams_reporting": len(collected),
        "client_cpu_s": sum(item[2] for item in collected),
        "server_cpu_s": (
            server_after - server_before
            if server_after is not None and server_before is not None
            else None
        ),
        "machine_busy_s": busy_after - busy_before,
        "machine_total_s": total_after - total_before,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run, print the result line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--row", required=True, help="comma-separated feature values")
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--warmup", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--server-pid", type=int, help="session whose CPU time to read")
    args = parser.parse_args(argv)
    plan = Plan(
        target=args.target,
        model=args.model,
        row=tuple(float(value) for value in args.row.split(",")),
        warmup_s=args.warmup,
        duration_s=args.duration,
    )
    result = run(plan, args.streams, args.server_pid)
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
