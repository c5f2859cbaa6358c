"""Where a benchmark's numbers come from: the machine, the interpreter, some library versions
and the commit. One helper for the benchmarks that need nothing more specific."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def versions(*packages: str) -> dict[str, str | None]:
    """Installed versions of some distributions in this interpreter (None when missing)."""
    found: dict[str, str | None] = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def _git_describe(repo: Path) -> str | None:
    try:
        run = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout.strip() or None


def machine_info(*packages: str, repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The machine (cores this process may use, CPU model, memory, load), the interpreter,
    the versions of ``packages`` and the commit (``-dirty`` when the work tree has edits)."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_total_kib = next((int(ln.split()[1]) for ln in meminfo if ln.startswith("MemTotal:")), 0)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")),
            None,
        ),
        "memory_gib": round(mem_total_kib / 2**20, 1),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions(*packages),
        "git": _git_describe(repo),
    }
