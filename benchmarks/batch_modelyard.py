"""modelyard's side of ``batch.py``: a home with the model registered, ``modelyard batch`` runs
(measured with their whole process tree: the CLI, the job's worker and its worker processes),
a run killed at about half-way and resumed, and the same job on Ray.

The job runs as ``modelyard batch bench --input … --output … --json``: the CLI submits it, a
worker process (its own session) runs it, and the CLI waits for the end and prints the job.
Ray runs it through ``batch_engine_run.py`` (the engine's ``transform`` with the Ray executor)
when the CLI has no executor option.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from batch_measure import TreeSampler, run_measured

BENCH_DIR = Path(__file__).resolve().parent
ENGINE_RUN = BENCH_DIR / "batch_engine_run.py"
MODEL = "bench"
CLI_TIMEOUT_S = 300.0


class ModelyardFailed(RuntimeError):
    """A modelyard command needed for the setup failed."""


def cli() -> Path:
    """The ``modelyard`` console script beside this interpreter."""
    return Path(sys.executable).with_name("modelyard")


def home_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without MODELYARD_* settings, with ``home`` as MODELYARD_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    return {**env, "MODELYARD_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1", **extra}


def run_cli(args: Sequence[str], env: dict[str, str]) -> str:
    """Run a modelyard command to its end; its stdout, or ModelyardFailed."""
    run = subprocess.run(
        [str(cli()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    if run.returncode != 0:
        raise ModelyardFailed(
            f"`modelyard {' '.join(args)}` exited {run.returncode}: "
            f"{(run.stderr or run.stdout).strip()[-2000:]}"
        )
    return run.stdout


def register(home: Path, model_path: Path, names: Sequence[str]) -> dict[str, Any]:
    """Register the model as ``bench`` with a float32 signature (the dtype XGBoost predicts
    in, and the signature the MLflow model gets); its version record."""
    signature = home.parent / "signature-float32.json"
    signature.write_bytes(
        orjson.dumps(
            {
                "inputs": [{"name": name, "dtype": "float32"} for name in names],
                "outputs": [{"name": None, "dtype": "float32"}],
            }
        )
    )
    out = run_cli(
        [
            "models",
            "register",
            MODEL,
            str(model_path),
            "--flavor",
            "xgboost",
            "--signature",
            str(signature),
            "--json",
        ],
        home_env(home),
    )
    return dict(orjson.loads(out))


def batch_options() -> str:
    """``modelyard batch --help`` (empty when the command does not exist)."""
    run = subprocess.run(
        [str(cli()), "batch", "--help"],
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    return run.stdout if run.returncode == 0 else ""


def batch_argv(input_path: Path, output: Path, workers: int | None, extra: Sequence[str] = ()):
    argv = [str(cli()), "batch", MODEL, "--input", str(input_path), "--output", str(output)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    return [*argv, *extra, "--json"]


def _job_of(stdout: str) -> dict[str, Any] | None:
    try:
        return dict(orjson.loads(stdout))
    except orjson.JSONDecodeError:
        return None


def _summary(measured: Any, rows: int, output: Path, job: dict[str, Any] | None) -> dict:
    result = measured.as_dict()
    ok = measured.returncode == 0
    result.update(
        ok=ok,
        rows=rows,
        rows_per_s=rows / measured.wall_s if ok else None,
        output=str(output),
        job=_job_brief(job),
        memory_timeline=measured.timeline[:: max(1, len(measured.timeline) // 200)],
    )
    if not ok:
        result["stdout_tail"] = measured.stdout_tail[-2000:]
    return result


def _job_brief(job: dict[str, Any] | None) -> dict[str, Any] | None:
    if job is None:
        return None
    keys = ("name", "status", "metrics", "failure_reason", "started_at", "ended_at", "pid")
    return {k: job.get(k) for k in keys if k in job}


def run_batch(
    home: Path,
    input_path: Path,
    output: Path,
    rows: int,
    workers: int | None,
    timeout_s: float,
    log: Path,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """One ``modelyard batch`` run, measured; the output folder is emptied first."""
    shutil.rmtree(output, ignore_errors=True)
    measured = run_measured(
        batch_argv(input_path, output, workers, extra),
        env=home_env(home),
        timeout_s=timeout_s,
        log_path=log,
    )
    return _summary(measured, rows, output, _job_of(measured.stdout_tail))


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def run_killed_and_resumed(
    home: Path,
    input_path: Path,
    output: Path,
    rows: int,
    workers: int | None,
    full_output_bytes: int,
    timeout_s: float,
    log: Path,
    at: float = 0.5,
) -> dict[str, Any]:
    """Start a run, SIGKILL its processes (the job's worker session included) once the bytes
    written under the output folder reach ``at`` of an uninterrupted run's output, then
    ``modelyard jobs resume JOB``. The cost is the two commands' wall times together."""
    shutil.rmtree(output, ignore_errors=True)
    seen: dict[str, Any] = {}

    def watch(sampler: TreeSampler, elapsed_s: float) -> str | None:
        written = _bytes_under(output) if output.exists() else 0
        if written >= at * full_output_bytes:
            seen.update(elapsed_s=elapsed_s, written_bytes=written)
            return f"SIGKILL at {written / full_output_bytes:.0%} of the output bytes"
        return None

    first = run_measured(
        batch_argv(input_path, output, workers),
        env=home_env(home),
        timeout_s=timeout_s,
        watch=watch,
        log_path=log,
    )
    result: dict[str, Any] = {"killed": first.as_dict(), "kill": seen}
    job = _latest_batch_job(home)
    if job is None or first.stopped_by is None:
        result["error"] = "the run ended before it could be killed" if job else "no batch job"
        return result
    result["job_before_resume"] = job
    time.sleep(0.2)  # let the kernel reap the killed processes before resume checks liveness
    resumed = run_measured(
        [str(cli()), "jobs", "resume", job["name"], "--json"],
        env=home_env(home),
        timeout_s=timeout_s,
        log_path=log.with_name(log.stem + "-resume.log"),
    )
    result["resumed"] = _summary(resumed, rows, output, _job_of(resumed.stdout_tail))
    result["total_wall_s"] = first.wall_s + resumed.wall_s
    result["ok"] = resumed.returncode == 0
    return result


def _latest_batch_job(home: Path) -> dict[str, Any] | None:
    """The newest batch job of ``home``, as ``modelyard jobs show --json`` prints it."""
    listed = run_cli(["jobs", "list", "--json"], home_env(home))
    jobs = [j for j in orjson.loads(listed) if j.get("kind") == "batch"]
    if not jobs:
        return None
    shown = run_cli(["jobs", "show", jobs[0]["name"], "--json"], home_env(home))
    return _job_brief(dict(orjson.loads(shown)))


def run_engine(
    home: Path,
    input_path: Path,
    output: Path,
    rows: int,
    workers: int | None,
    executor: str,
    timeout_s: float,
    log: Path,
    address: str | None = None,
) -> dict[str, Any]:
    """The engine's ``transform`` from ``batch_engine_run.py`` (``executor``: local or ray),
    measured the same way."""
    shutil.rmtree(output, ignore_errors=True)
    argv = [
        sys.executable,
        str(ENGINE_RUN),
        "--model",
        MODEL,
        "--input",
        str(input_path),
        "--output",
        str(output),
        "--executor",
        executor,
    ]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if address is not None:
        argv += ["--address", address]
    measured = run_measured(argv, env=home_env(home), timeout_s=timeout_s, log_path=log)
    lines = measured.stdout_tail.strip().splitlines()
    report = _job_of(lines[-1]) if lines else None
    summary = _summary(measured, rows, output, None)
    summary["engine_report"] = report
    return summary


def precision_probe(home: Path, work: Path, n_features: int) -> dict[str, Any]:
    """What ``modelyard batch`` does with a headerless CSV against the float32 signature when
    its values fit float32 exactly (4 decimals) and when they do not (15 significant digits):
    the issue asks it to cast safely in the first case and to say so in the second. Each run's
    outcome, and its log lines that mention precision or float32."""
    import numpy as np

    rng = np.random.default_rng(5)
    values = rng.standard_normal((1000, n_features)) * 2
    cases = {
        "exact": np.round(values, 4).astype(np.float32).astype(np.float64),
        "lossy": values,
    }
    found: dict[str, Any] = {}
    for name, rows in cases.items():
        csv = work / f"probe-{name}.csv"
        fmt = "%.15g" if name == "lossy" else "%.4f"
        np.savetxt(csv, rows, delimiter=",", fmt=fmt)
        out = work / f"probe-{name}-out"
        shutil.rmtree(out, ignore_errors=True)
        run = subprocess.run(
            [*batch_argv(csv, out, None)],
            env=home_env(home),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        job = _job_of(run.stdout)
        log = ""
        if job is not None:
            shown = subprocess.run(
                [str(cli()), "jobs", "logs", job["name"]],
                env=home_env(home),
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT_S,
                check=False,
            )
            log = shown.stdout
        said = [
            line.strip()
            for line in (log + run.stderr).splitlines()
            if "precision" in line.lower() or "float32" in line.lower()
        ]
        found[name] = {
            "exit_code": run.returncode,
            "status": job.get("status") if job else None,
            "failure_reason": job.get("failure_reason") if job else run.stderr[-1000:],
            "rows_out": (job or {}).get("metrics", {}).get("batch.rows_out"),
            "values_rounded": (job or {}).get("metrics", {}).get("batch.values_rounded"),
            "mentions_precision": said[:5],
        }
    return found
