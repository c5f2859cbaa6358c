"""Drive ``wrk`` with ``wrk_post.lua`` and read back its counts and latency percentiles."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("wrk_post.lua")
MAX_THREADS = 2  # wrk needs threads <= connections; the target machine has 2 cores
REQUEST_TIMEOUT_S = 10  # a request slower than this counts as a wrk timeout error
RESULT_MARKER = "BENCH_RESULT "
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


class WrkFailed(RuntimeError):
    """wrk is missing, failed, overran its time, or printed no result."""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency (ms), error counts, and wrk's own CPU time."""

    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: dict[str, int]
    client_cpu_s: float

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.duration_s

    @property
    def total_errors(self) -> int:
        """Connect, read, write, timeout errors and non-2xx/3xx answers, together."""
        return sum(self.errors.values())


def wrk_binary() -> str:
    """The wrk executable on PATH."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkFailed("wrk is not installed: run `apt-get install -y wrk` (the Debian package)")
    return path


def wrk_version() -> str:
    """wrk's version line."""
    run = subprocess.run(
        [wrk_binary(), "-v"], capture_output=True, text=True, timeout=10, check=False
    )
    return (run.stdout or run.stderr).splitlines()[0].strip()


def threads_for(connections: int) -> int:
    """wrk threads for a connection count: one per connection, at most ``MAX_THREADS``."""
    return min(connections, MAX_THREADS)


def _children_cpu_seconds() -> float:
    """CPU time of this process's reaped children (wrk is the only one reaped during a run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _parse(stdout: str, client_cpu_s: float) -> WrkResult:
    """Build a result from the ``BENCH_RESULT`` line ``wrk_post.lua`` prints."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith(RESULT_MARKER)), None)
    if line is None:
        raise WrkFailed(f"wrk printed no {RESULT_MARKER.strip()} line:\n{stdout[-2000:]}")
    raw = json.loads(line.removeprefix(RESULT_MARKER))
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1e3,
        p90_ms=raw["p90_us"] / 1e3,
        p99_ms=raw["p99_us"] / 1e3,
        max_ms=raw["max_us"] / 1e3,
        mean_ms=raw["mean_us"] / 1e3,
        errors={kind: int(raw["errors"][kind]) for kind in ERROR_KINDS},
        client_cpu_s=client_cpu_s,
    )


def run_wrk(url: str, body: bytes, *, connections: int, duration_s: int) -> WrkResult:
    """POST ``body`` to ``url`` over ``connections`` keep-alive connections for ``duration_s``."""
    argv = [
        wrk_binary(),
        f"-t{threads_for(connections)}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    env = {**os.environ, "BENCH_BODY": body.decode()}
    cpu_before = _children_cpu_seconds()
    try:
        run = subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=duration_s + REQUEST_TIMEOUT_S + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkFailed(f"wrk did not finish within {exc.timeout:.0f} s") from exc
    if run.returncode != 0:
        raise WrkFailed(f"wrk exited with code {run.returncode}: {run.stderr[-2000:]}")
    return _parse(run.stdout, _children_cpu_seconds() - cpu_before)
