"""The tuning benchmark's view of the machine: what it is, whether it is quiet before a run,
and how much CPU a run took (modelyard's worker processes, this process, everyone else)."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machine import versions as _versions
from serverproc import machine_cpu_seconds

#: Machine-wide busy share (of all cores) under which the machine counts as quiet.
QUIET_BUSY_FRACTION = 0.15
REAP_TIMEOUT_S = 30.0


def _busy_fraction(seconds: float) -> float:
    busy0, total0 = machine_cpu_seconds()
    time.sleep(seconds)
    busy1, total1 = machine_cpu_seconds()
    return (busy1 - busy0) / max(total1 - total0, 1e-9)


def settle(max_wait_s: float) -> dict[str, Any]:
    """Wait (up to ``max_wait_s``) until the machine is quiet, one-second samples; say how
    long it took and how busy it was at the end (other users of a shared machine)."""
    start = time.monotonic()
    busy = _busy_fraction(1.0)
    while busy > QUIET_BUSY_FRACTION and time.monotonic() - start < max_wait_s:
        busy = _busy_fraction(1.0)
    return {
        "waited_s": time.monotonic() - start,
        "busy_fraction_before": busy,
        "quiet": busy <= QUIET_BUSY_FRACTION,
    }


def reap(pid: int | None) -> None:
    """Wait for this process's child ``pid`` (a tuning coordinator) to exit, so that its CPU
    time (and its runners', which it reaped) is counted and it does not overlap the next run."""
    if pid is None:
        return
    deadline = time.monotonic() + REAP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            return  # not our child, or already reaped
        time.sleep(0.05)


@dataclass(frozen=True)
class CpuMark:
    """CPU counters at one moment."""

    at: float
    children: float
    own: float
    busy: float
    total: float

    @classmethod
    def now(cls) -> CpuMark:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        busy, total = machine_cpu_seconds()
        return cls(
            time.perf_counter(),
            children.ru_utime + children.ru_stime,
            own.ru_utime + own.ru_stime,
            busy,
            total,
        )

    def since(self, start: CpuMark) -> dict[str, float]:
        """CPU seconds between ``start`` and this mark."""
        modelyard = self.children - start.children
        own = self.own - start.own
        busy = self.busy - start.busy
        return {
            "window_s": self.at - start.at,
            "modelyard_workers_cpu_s": modelyard,
            "benchmark_process_cpu_s": own,
            "machine_busy_cpu_s": busy,
            "machine_busy_fraction": busy / max(self.total - start.total, 1e-9),
            "other_cpu_s": max(0.0, busy - modelyard - own),
        }


def machine_info(repo: Path) -> dict[str, Any]:
    """Where the numbers come from."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    git = subprocess.run(
        ["git", "-C", str(repo), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")),
            None,
        ),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": _versions(
            "modelyard", "xgboost", "optuna", "scikit-learn", "numpy", "pandas", "sqlalchemy"
        ),
        "git": git.stdout.strip() or None,
    }
