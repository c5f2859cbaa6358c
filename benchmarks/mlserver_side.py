"""MLServer for ``v2_serving.py``: its own virtualenv, a model repository, how to start it.

MLServer and modelyard cannot share a virtualenv (MLServer pins FastAPI and others), so the
benchmark keeps one beside itself, ``benchmarks/.venv-mlserver``, made with uv from pinned
versions the first time it is needed (and remade when a pin changed).

Configuration, chosen to be fair to MLServer (1.7's server-wide settings; in 1.7
``parallel_workers`` in a model's settings is deprecated and the server's value is used):

- ``parallel_workers: 2``: the HTTP/gRPC front process hands inference to 2 worker processes,
  as ``modelyard serve --workers 2`` runs 2 processes.
- ``debug: false``: no access log line per request (modelyard's server writes none either).
- ``metrics_endpoint: null``: no Prometheus middleware or metrics server (modelyard has none
  on this path yet).
- ``OMP_NUM_THREADS=1`` for every server in the benchmark, so XGBoost predicts one row on one
  thread everywhere.
- uvicorn gets ``httptools`` and ``uvloop``, as modelyard's server has.
- Two models from the same booster file: ``bench`` (MLServer's default, no adaptive batching)
  and ``bench-batched`` (adaptive batching with modelyard's batch limits: 64 requests, 2 ms).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_VENV = BENCH_DIR / ".venv-mlserver"
UV = BENCH_DIR.parent / ".tools" / "bin" / "uv"
VENV_TIMEOUT_S = 600

# Pinned: MLServer 1.7.1 (the latest release), the same XGBoost as modelyard's venv, and the
# uvloop of MLServer's time (uvloop 0.22+ makes MLServer 1.7's inference workers crash at
# start: they call asyncio.get_event_loop() with no loop set).
PINS = {
    "mlserver": "1.7.1",
    "mlserver-xgboost": "1.7.1",
    "xgboost": importlib.metadata.version("xgboost"),
    "uvloop": "0.21.0",
    "httptools": "0.9.0",
}
REPORTED_PACKAGES = (*PINS, "fastapi", "uvicorn", "numpy", "scikit-learn", "grpcio", "pydantic")

PARALLEL_WORKERS = 2
MODEL = "bench"
BATCHED_MODEL = "bench-batched"
ADAPTIVE_BATCHING = {"max_batch_size": 64, "max_batch_time": 0.002}  # seconds


class MLServerSetupFailed(RuntimeError):
    """The side virtualenv could not be made or is unusable."""


@dataclass(frozen=True)
class MLServerRepo:
    """A model repository folder with the server's and the models' settings."""

    root: Path
    http_port: int
    grpc_port: int
    settings: dict[str, Any]
    models: dict[str, dict[str, Any]]


def _installed_versions(python: Path) -> dict[str, str | None]:
    """Versions of ``REPORTED_PACKAGES`` in the venv of ``python`` (None when missing)."""
    script = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))\n"
    )
    run = subprocess.run(
        [str(python), "-c", script, *REPORTED_PACKAGES],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if run.returncode != 0:
        raise MLServerSetupFailed(f"cannot read versions in {python}: {run.stderr[-500:]}")
    return dict(json.loads(run.stdout))


def _pins_met(versions: Mapping[str, str | None]) -> bool:
    """Whether every pinned package is installed at its pinned version."""
    return all(versions.get(name) == pin for name, pin in PINS.items())


def ensure_venv(venv: Path) -> dict[str, Any]:
    """Make (or reuse) the MLServer virtualenv at ``venv``.

    Returns:
        The venv's path, its python, whether it was created now, and installed versions.

    Raises:
        MLServerSetupFailed: uv is missing, or creating or installing failed.
    """
    python = venv / "bin" / "python"
    created = False
    if not (python.exists() and _pins_met(_installed_versions(python))):
        if not UV.exists():
            raise MLServerSetupFailed(f"uv is not at {UV} (make setup installs it)")
        requirements = [f"{name}=={pin}" for name, pin in PINS.items()]
        for argv in (
            [str(UV), "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(venv)],
            [str(UV), "pip", "install", "--quiet", "--python", str(python), *requirements],
        ):
            run = subprocess.run(
                argv, capture_output=True, text=True, timeout=VENV_TIMEOUT_S, check=False
            )
            if run.returncode != 0:
                raise MLServerSetupFailed(f"`{' '.join(argv)}` failed: {run.stderr[-2000:]}")
        created = True
    versions = _installed_versions(python)
    if not _pins_met(versions):
        raise MLServerSetupFailed(f"{venv} does not have the pinned versions: {versions}")
    return {"path": str(venv), "python": str(python), "created_now": created, "versions": versions}


def write_repo(root: Path, model_path: Path, http_port: int, grpc_port: int) -> MLServerRepo:
    """Write the server settings and two model folders serving ``model_path``."""
    root.mkdir(parents=True, exist_ok=True)
    settings = {
        "debug": False,
        "parallel_workers": PARALLEL_WORKERS,
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_endpoint": None,
        # Scratch folders MLServer would otherwise create in the current directory.
        "metrics_dir": str(root / ".metrics"),
        "environments_dir": str(root / ".envs"),
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    base: dict[str, Any] = {
        "implementation": "mlserver_xgboost.XGBoostModel",
        "parameters": {"uri": str(model_path)},
    }
    models: dict[str, dict[str, Any]] = {
        MODEL: dict(base),
        BATCHED_MODEL: {**base, **ADAPTIVE_BATCHING},
    }
    for name, model_settings in models.items():
        folder = root / name
        folder.mkdir(exist_ok=True)
        model_settings["name"] = name
        (folder / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return MLServerRepo(root, http_port, grpc_port, settings, models)


def argv(venv: Path, repo: MLServerRepo) -> list[str]:
    """The command that serves the repository."""
    return [str(venv / "bin" / "mlserver"), "start", str(repo.root)]
