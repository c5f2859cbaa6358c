"""Small tree models for the compiled-predictor tests, and the agreement rule they check.

Every model is trained in well under a second (500 rows, 8 features, 20-30 trees). Where the
library learns from missing values, the training data has them, and whether a value is missing
carries signal: the trees then send missing values a learned way, which the compiled graph must
reproduce.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn import ensemble, tree
from sklearn.base import clone

from modelyard.runtimes.lightgbm_runtime import LightGBMLoaded
from modelyard.runtimes.sklearn_runtime import SklearnLoaded
from modelyard.runtimes.xgboost_runtime import XGBoostLoaded

ROWS = 500
FEATURES = 8
TREES = 25
#: The documented agreement rule: |compiled - native| <= 1e-6 * max(1, |native|).
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Data:
    """Training features (with and without missing values) and four targets."""

    x: np.ndarray  # 10% missing; feature 0 being missing shifts the target
    clean: np.ndarray  # the same rows, nothing missing
    binary: np.ndarray
    three: np.ndarray
    real: np.ndarray  # within about [-6, 6]
    wide: np.ndarray  # the same times 10, plus 30: partial sums far larger than some answers


def training_data(seed: int = 0) -> Data:
    rng = np.random.default_rng(seed)
    clean = rng.normal(size=(ROWS, FEATURES))
    signal = clean[:, 0] + 0.5 * clean[:, 1] - clean[:, 2] * clean[:, 3]
    missing = rng.random(clean.shape) < 0.10
    signal = signal + np.where(missing[:, 0], 1.5, 0.0)
    x = np.where(missing, np.nan, clean)
    return Data(
        x=x,
        clean=clean,
        binary=(signal > 0).astype(np.int64),
        three=np.digitize(signal, [-0.7, 0.7]).astype(np.int64),
        real=signal,
        wide=signal * 10 + 30,
    )


def fresh_rows(train: np.ndarray, n: int, seed: int, missing: bool) -> np.ndarray:
    """``n`` new rows across each feature's training range (padded by a fifth of the span on
    each side), a fifth of the values snapped onto training values (where the splits are),
    and a tenth missing when ``missing``."""
    rng = np.random.default_rng(seed)
    low, high = np.nanmin(train, axis=0), np.nanmax(train, axis=0)
    pad = (high - low) / 5
    rows = rng.uniform(low - pad, high + pad, size=(n, train.shape[1]))
    for j in range(train.shape[1]):
        seen = train[~np.isnan(train[:, j]), j]
        snap = rng.random(n) < 0.2
        rows[snap, j] = rng.choice(seen, size=int(snap.sum()))
    if missing:
        rows[rng.random(rows.shape) < 0.10] = np.nan
        rows[: n // 50] = np.nan  # whole rows missing: every split's default direction
    return rows


def assert_agrees(native: Any, compiled: Any, classes: bool) -> None:
    """Same shape and dtype; classes exactly equal, numbers within the tolerance rule."""
    native, compiled = np.asarray(native), np.asarray(compiled)
    assert compiled.shape == native.shape
    assert compiled.dtype == native.dtype
    if classes:
        wrong = np.flatnonzero((native != compiled).reshape(len(native), -1).any(axis=1))
        assert wrong.size == 0, f"{wrong.size} classes differ, first rows {wrong[:5]}"
        return
    a, b = native.astype(np.float64), compiled.astype(np.float64)
    ok = (np.abs(a - b) <= TOLERANCE * np.maximum(1.0, np.abs(a))) | (np.isnan(a) & np.isnan(b))
    bad = np.flatnonzero(~ok.reshape(len(a), -1).all(axis=1))
    assert bad.size == 0, (
        f"{bad.size} of {len(a)} rows differ; first: native {a[bad[:3]]} compiled {b[bad[:3]]}"
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def xgb_model(data: Data, objective: str, rounds: int = TREES, **params: Any) -> XGBoostLoaded:
    target = {"binary:logistic": data.binary, "reg:squarederror": data.real}.get(
        objective, data.three
    )
    target = params.pop("label", target)
    extra: dict[str, Any] = {"num_class": 3} if objective.startswith("multi:") else {}
    booster = xgb.train(
        {"objective": objective, "max_depth": 4, "nthread": 1, **extra, **params},
        xgb.DMatrix(data.x, label=target),
        num_boost_round=rounds,
    )
    return XGBoostLoaded(booster)


def lgb_model(data: Data, objective: str, rounds: int = TREES, **params: Any) -> LightGBMLoaded:
    target = {"binary": data.binary, "regression": data.real}.get(objective, data.three)
    target = params.pop("label", target)
    extra: dict[str, Any] = {"num_class": 3} if objective == "multiclass" else {}
    booster = lgb.train(
        {
            "objective": objective,
            "num_leaves": 15,
            "min_data_in_leaf": 5,
            "verbose": -1,
            "num_threads": 1,
            **extra,
            **params,
        },
        lgb.Dataset(data.x, label=target),
        num_boost_round=rounds,
    )
    return LightGBMLoaded(booster)


# name -> (estimator, target field, learns from missing values)
_SKLEARN: dict[str, tuple[Any, str, bool]] = {
    "RandomForestClassifier": (
        ensemble.RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
        "binary",
        True,
    ),
    "RandomForestRegressor": (
        ensemble.RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0),
        "real",
        True,
    ),
    "ExtraTreesClassifier": (
        ensemble.ExtraTreesClassifier(n_estimators=20, max_depth=6, random_state=0),
        "three",
        True,
    ),
    "GradientBoostingClassifier-binary": (
        ensemble.GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0),
        "binary",
        False,
    ),
    "GradientBoostingClassifier-3class": (
        ensemble.GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0),
        "three",
        False,
    ),
    "GradientBoostingRegressor": (
        ensemble.GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0),
        "real",
        False,
    ),
    "DecisionTreeClassifier": (
        tree.DecisionTreeClassifier(max_depth=8, random_state=0),
        "three",
        True,
    ),
}

SKLEARN_NAMES = tuple(_SKLEARN)


def sklearn_model(data: Data, name: str) -> tuple[SklearnLoaded, bool]:
    """The fitted estimator ``name`` and whether it was trained with missing values."""
    template, target, missing = _SKLEARN[name]
    estimator = clone(template).fit(data.x if missing else data.clean, getattr(data, target))
    return SklearnLoaded(estimator), missing
