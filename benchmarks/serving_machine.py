"""Where the serving benchmark's numbers come from: the machine, the interpreter, the
libraries and the commit."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xgboost
from machine import versions as _versions
from wrkload import wrk_version


def _command_output(argv: Sequence[str]) -> str | None:
    """First line a short command prints, or None."""
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (run.stdout or run.stderr).strip().splitlines()[0] if run.returncode == 0 else None


def machine_info(repo_root: Path, nproc: int) -> dict[str, Any]:
    """Where the numbers come from."""
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        None,
    )
    return {
        "nproc": nproc,
        "cpu_model": cpu_model,
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "xgboost": xgboost.__version__,
        "packages": _versions(
            "numpy",
            "orjson",
            "starlette",
            "uvicorn",
            "uvloop",
            "httptools",
            "modelyard",
            "onnxruntime",
            "onnxmltools",
        ),
        "wrk": wrk_version(),
        "git": _command_output(["git", "-C", str(repo_root), "describe", "--always", "--dirty"]),
    }
