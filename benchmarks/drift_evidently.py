"""Evidently for benchmarks/drift.py: its own virtualenv, and a run of the worker in it.

Evidently 0.7 needs pandas < 3 and modelyard's venv has pandas 3, so the benchmark keeps a
virtualenv beside itself, ``benchmarks/.venvs/evidently`` (git-ignored), made with
``python -m venv`` and pip from the pinned versions below the first time it is needed (and
remade when a pin is not met). The pins are the versions this benchmark was run with.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import procmem

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_VENV = BENCH_DIR / ".venvs" / "evidently"
WORKER = BENCH_DIR / "drift_evidently_worker.py"
VENV_TIMEOUT_S = 900

PINS = {"evidently": "0.7.23", "pandas": "2.3.3", "pyarrow": "26.0.1"}
REPORTED_PACKAGES = (*PINS, "numpy", "scipy", "scikit-learn")


class EvidentlySetupFailed(RuntimeError):
    """The side virtualenv could not be made, or is unusable."""


def _installed_versions(
    python: Path, packages: Sequence[str] = REPORTED_PACKAGES
) -> dict[str, str | None]:
    script = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))\n"
    )
    run = subprocess.run(
        [str(python), "-c", script, *packages],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        raise EvidentlySetupFailed(f"cannot read versions in {python}: {run.stderr[-500:]}")
    return dict(json.loads(run.stdout))


def _pins_met(versions: dict[str, str | None], pins: Mapping[str, str] = PINS) -> bool:
    return all(versions.get(name) == pin for name, pin in pins.items())


def ensure_venv(
    venv: Path = DEFAULT_VENV,
    pins: Mapping[str, str] = PINS,
    reported: Sequence[str] = REPORTED_PACKAGES,
) -> dict[str, Any]:
    """Make (or reuse) Evidently's virtualenv at ``venv`` (another side virtualenv with other
    ``pins``, reporting the versions of ``reported``: ``batch_mlflow.py``).

    Returns:
        Its path, its python, whether it was made now (and how long that took), and the
        installed versions.

    Raises:
        EvidentlySetupFailed: creating it or installing the pins failed (no network, ...).
    """
    python = venv / "bin" / "python"
    created, setup_s = False, 0.0
    if not (python.exists() and _pins_met(_installed_versions(python, reported), pins)):
        start = time.perf_counter()
        requirements = [f"{name}=={pin}" for name, pin in pins.items()]
        for argv in (
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *requirements],
        ):  # fmt: skip
            print(f"{venv.name} venv: {' '.join(argv)}", flush=True)
            run = subprocess.run(
                argv, capture_output=True, text=True, timeout=VENV_TIMEOUT_S, check=False
            )
            if run.returncode != 0:
                raise EvidentlySetupFailed(f"`{' '.join(argv)}` failed: {run.stderr[-2000:]}")
        created, setup_s = True, time.perf_counter() - start
    versions = _installed_versions(python, reported)
    if not _pins_met(versions, pins):
        raise EvidentlySetupFailed(f"{venv} does not have the pinned versions: {versions}")
    return {
        "path": str(venv),
        "python": str(python),
        "created_now": created,
        "setup_s": setup_s,
        "versions": versions,
    }


def run_worker(python: Path, reference: Path, current: Path, timeout_s: float) -> dict[str, Any]:
    """Run the worker on the two Parquet files in Evidently's venv; its JSON report, plus the
    wall time of the whole subprocess. A timeout or a crash is reported, not raised."""
    argv = [str(python), str(WORKER), "--reference", str(reference), "--current", str(current)]
    parent_rss = procmem.before_spawn()
    start = time.perf_counter()
    try:
        run = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=BENCH_DIR
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s", "wall_s": timeout_s}
    wall_s = time.perf_counter() - start
    if run.returncode != 0:
        return {"error": f"exit {run.returncode}: {run.stderr[-3000:]}", "wall_s": wall_s}
    return {
        **json.loads(run.stdout.strip().splitlines()[-1]),
        "wall_s": wall_s,
        "spawning_process_rss_mib": parent_rss,
    }
