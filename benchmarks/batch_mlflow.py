"""``mlflow models predict`` for ``batch.py``, in its own virtualenv.

The virtualenv is ``benchmarks/.venvs/mlflow`` (git-ignored), made by
``drift_evidently.ensure_venv`` from the pins below. The model is the benchmark's booster
saved as an MLflow XGBoost model with a float32 signature (``batch_mlflow_worker.py``).
Predictions run with ``--env-manager local`` (the virtualenv already holds the model's
libraries; MLflow's own environment managers would build another one first).

What is tried, in order, each timed as a whole command with its process tree's memory:

1. the headerless CSV, as ``-t csv``: MLflow reads its first row as column names;
2. the same rows with a header line: MLflow reads them as float64 and refuses to cast them
   to the signature's float32 ("Can not safely convert float64 to float32");
3. the same rows as a ``dataframe_split`` JSON document (``-t json``): MLflow reads JSON
   with the signature's types, so this runs. Converting the CSV is timed separately.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import batch_data
import drift_evidently
import numpy as np
import orjson
from batch_measure import run_measured

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_VENV = BENCH_DIR / ".venvs" / "mlflow"
WORKER = BENCH_DIR / "batch_mlflow_worker.py"
# mlflow 3.18.0 is on PyPI, but the mlflow-tracing==3.18.0 it requires was not installable
# from this machine's index when the benchmark was written: 3.17.2 is the newest that is.
PINS = {"mlflow": "3.17.2", "xgboost": importlib.metadata.version("xgboost")}
REPORTED = (*PINS, "mlflow-skinny", "pandas", "numpy", "pyarrow")
SetupFailed = drift_evidently.EvidentlySetupFailed


def ensure_venv(venv: Path = DEFAULT_VENV) -> dict[str, Any]:
    """Make (or reuse) the virtualenv; see ``drift_evidently.ensure_venv``."""
    return drift_evidently.ensure_venv(venv, PINS, REPORTED)


def save_model(venv: Path, model_path: Path, out_dir: Path) -> dict[str, Any]:
    """Save the booster as an MLflow model with a float32 signature; the worker's report."""
    run = subprocess.run(
        [str(venv / "bin" / "python"), str(WORKER), str(model_path), str(out_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if run.returncode != 0:
        raise SetupFailed(f"saving the MLflow model failed: {run.stderr[-2000:]}")
    return dict(orjson.loads(run.stdout.strip().splitlines()[-1]))


def _reason(text: str) -> str | None:
    """MLflow's error, without the data frame it prints inside it."""
    found = re.findall(r"Error: (.+)", text)
    if found:
        return found[-1].strip()[:600]
    lines = [line for line in text.splitlines() if "Exception" in line or "Error" in line]
    return lines[-1][:600] if lines else None


def predict(
    venv: Path, model_dir: Path, input_path: Path, kind: str, out: Path, timeout_s: float
) -> dict[str, Any]:
    """``mlflow models predict`` on one input; the command, whether it ran, and its cost."""
    argv = [
        str(venv / "bin" / "mlflow"),
        "models",
        "predict",
        "-m",
        str(model_dir),
        "-i",
        str(input_path),
        "-t",
        kind,
        "-o",
        str(out),
        "--env-manager",
        "local",
    ]
    out.unlink(missing_ok=True)
    measured = run_measured(argv, timeout_s=timeout_s, log_path=out.with_suffix(".log"))
    ok = measured.returncode == 0 and out.exists()
    return {
        "command": ["mlflow", *argv[1:]],
        "accepted": ok,
        "refusal": None if ok else _reason(measured.stdout_tail + measured.stderr_tail),
        **measured.as_dict(),
    }


def read_predictions(path: Path) -> np.ndarray:
    """MLflow's ``{"predictions": [...]}`` output as float64."""
    return np.asarray(orjson.loads(path.read_bytes())["predictions"], dtype=np.float64)


def run(
    venv: Path, model_path: Path, csv_path: Path, rows: int, workdir: Path, timeout_s: float
) -> dict[str, Any]:
    """Every attempt above on ``csv_path``; the predictions' file is kept for comparison
    under ``result["predictions_path"]`` when one ran."""
    model_dir = workdir / "mlflow-model"
    if not model_dir.exists():
        save_model(venv, model_path, model_dir)
    n_features = 30
    headed = batch_data.with_header(csv_path, workdir / "mlflow-input-header.csv", n_features)
    attempts: dict[str, Any] = {}
    attempts["headerless_csv"] = predict(
        venv, model_dir, csv_path, "csv", workdir / "mlflow-headerless.json", timeout_s
    )
    attempts["csv_with_header"] = predict(
        venv, model_dir, headed, "csv", workdir / "mlflow-header.json", timeout_s
    )
    headed.unlink()
    start = time.perf_counter()
    split = batch_data.as_split_json(csv_path, workdir / "mlflow-input.json", n_features)
    convert_s = time.perf_counter() - start
    out = workdir / "mlflow-split.json"
    attempts["dataframe_split_json"] = {
        "csv_to_json_s": round(convert_s, 3),
        "json_bytes": split.stat().st_size,
        **predict(venv, model_dir, split, "json", out, timeout_s),
    }
    split.unlink()
    result: dict[str, Any] = {
        "model": "mlflow.xgboost.save_model, signature: 30 x ColSpec(float) (float32)",
        "attempts": attempts,
        "refuses_headerless_csv": not attempts["headerless_csv"]["accepted"],
        "refuses_csv_with_header": not attempts["csv_with_header"]["accepted"],
    }
    timed = attempts["dataframe_split_json"]
    if timed["accepted"]:
        result["predictions_path"] = str(out)
        result["rows_per_s"] = rows / timed["wall_s"]
        result["rows_per_s_with_conversion"] = rows / (timed["wall_s"] + convert_s)
        result["peak_rss_mib"] = timed["memory"]["peak_rss_mib"]
    return result


if __name__ == "__main__":  # a smoke run: python batch_mlflow.py MODEL.ubj INPUT.csv ROWS WORKDIR
    print(orjson.dumps(ensure_venv()).decode())
    report = run(
        DEFAULT_VENV,
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        int(sys.argv[3]),
        Path(sys.argv[4]),
        600,
    )
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
