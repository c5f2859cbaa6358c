"""The tuning benchmark's reference: the trials' configurations trained in this process with
plain ``xgboost.train``, the way modelyard's built-in xgboost algorithm trains them."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost

# How the product turns hyperparameters into xgboost.train's params (the reference mirrors it).
INT_HYPERPARAMETERS = {"num_round", "max_depth", "seed", "nthread"}
PRODUCT_DEFAULTS: dict[str, Any] = {
    "max_depth": 6, "eta": 0.3, "subsample": 1.0, "colsample_bytree": 1.0,
    "min_child_weight": 1.0, "gamma": 0.0, "lambda": 1.0, "alpha": 0.0, "seed": 0, "nthread": 1,
}  # fmt: skip


@dataclass(frozen=True)
class Loaded:
    """A task's data, read once, as the product hands it to XGBoost."""

    train_x: pd.DataFrame
    train_y: np.ndarray
    valid_x: pd.DataFrame
    valid_y: np.ndarray
    classes: int


def load(train_csv: Path, validation_csv: Path, target: str) -> Loaded:
    """Both CSVs, read with pandas; features as float64 like the product's."""
    train, valid = pd.read_csv(train_csv), pd.read_csv(validation_csv)
    return Loaded(
        train.drop(columns=[target]).astype("float64"), train[target].to_numpy(),
        valid.drop(columns=[target]).astype("float64"), valid[target].to_numpy(),
        int(train[target].nunique()),
    )  # fmt: skip


def xgb_params(hyperparameters: dict[str, str], classes: int) -> tuple[dict[str, Any], int]:
    """The params and rounds the product's xgboost algorithm would use for a trial."""
    given = {
        k: int(v) if k in INT_HYPERPARAMETERS else float(v) for k, v in hyperparameters.items()
    }
    params = {**PRODUCT_DEFAULTS, **given}
    rounds = params.pop("num_round")
    multi = classes > 2
    params["objective"] = "multi:softprob" if multi else "binary:logistic"
    params["eval_metric"] = ["mlogloss", "merror"] if multi else ["auc", "logloss"]
    params["verbosity"] = 0
    if multi:
        params["num_class"] = classes
    return params, rounds


def train_once(data: Loaded, hyperparameters: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Seconds for one training (DMatrix construction included) and its final metrics."""
    params, rounds = xgb_params(hyperparameters, data.classes)
    start = time.perf_counter()
    dtrain = xgboost.DMatrix(data.train_x, label=data.train_y, nthread=1)
    dvalid = xgboost.DMatrix(data.valid_x, label=data.valid_y, nthread=1)
    log: dict[str, Any] = {}
    xgboost.train(
        params, dtrain, num_boost_round=rounds, evals=[(dtrain, "train"), (dvalid, "validation")],
        evals_result=log, verbose_eval=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return seconds, {f"{d}:{m}": float(v[-1]) for d, by in log.items() for m, v in by.items()}


def reference(data: Loaded, objective: str, run: dict[str, Any], passes: int) -> dict[str, Any]:
    """A run's configurations trained here ``passes`` times: per-trial medians, their sum, and
    how far the objective lands from the trials' (the same training gives the same value)."""
    configs = [t["hyperparameters"] for t in run["trials"]]
    timings: list[list[float]] = []
    diffs = []
    for _ in range(passes):
        timings.append([])
        for trial, config in zip(run["trials"], configs, strict=True):
            seconds, metrics = train_once(data, config)
            timings[-1].append(seconds)
            if trial["value"] is not None:
                diffs.append(abs(metrics[objective] - trial["value"]))
    per_trial = [statistics.median(times) for times in zip(*timings, strict=True)]
    return {
        "from_run": run["job"],
        "passes": passes,
        "per_trial_s": per_trial,
        "sum_s": sum(per_trial),
        "sum_per_pass_s": [sum(times) for times in timings],
        "objective_max_abs_diff_vs_trials": max(diffs) if diffs else None,
    }
