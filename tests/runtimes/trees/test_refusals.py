"""Models the engine does not compile stay native with a reason a user can act on, and
``choose`` never raises for them."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn import ensemble, linear_model

from modelyard.runtimes.base import LoadedModel
from modelyard.runtimes.lightgbm_runtime import LightGBMLoaded
from modelyard.runtimes.sklearn_runtime import SklearnLoaded
from modelyard.runtimes.trees import choose
from modelyard.runtimes.xgboost_runtime import XGBoostLoaded
from modelyard.storage.artifacts import FsspecArtifactStore
from tests.runtimes.trees._models import (
    Data,
    assert_agrees,
    fresh_rows,
    sha256,
    training_data,
)

DATA: Data = training_data()


def _xgb(params: dict[str, object], rounds: int = 5, **train: object) -> XGBoostLoaded:
    booster = xgb.train(
        {"nthread": 1, **params},
        xgb.DMatrix(DATA.x, label=DATA.binary),
        num_boost_round=rounds,
        **train,  # type: ignore[arg-type]
    )
    return XGBoostLoaded(booster)


def _squared_error(pred: np.ndarray, dtrain: object) -> tuple[np.ndarray, np.ndarray]:
    label = dtrain.get_label()  # type: ignore[attr-defined]
    return pred - label, np.ones_like(pred)


def _lgb(params: dict[str, object]) -> LightGBMLoaded:
    booster = lgb.train(
        {"verbose": -1, "num_threads": 1, **params},
        lgb.Dataset(DATA.x, label=DATA.real),
        num_boost_round=5,
    )
    return LightGBMLoaded(booster)


def _ranker() -> XGBoostLoaded:
    groups = np.repeat(np.arange(50), 10)
    matrix = xgb.DMatrix(DATA.clean, label=DATA.three, qid=groups)
    booster = xgb.train({"objective": "rank:pairwise", "nthread": 1}, matrix, num_boost_round=5)
    return XGBoostLoaded(booster)


def _sklearn(estimator: object, missing: bool = True) -> SklearnLoaded:
    x = DATA.x if missing else DATA.clean
    return SklearnLoaded(estimator.fit(x, DATA.binary))  # type: ignore[attr-defined]


REFUSED: dict[str, tuple[Callable[[], LoadedModel], str, str]] = {
    "xgboost-gblinear": (
        lambda: XGBoostLoaded(
            xgb.train(
                {"booster": "gblinear", "objective": "reg:squarederror", "nthread": 1},
                xgb.DMatrix(DATA.clean, label=DATA.real),
                num_boost_round=5,
            )
        ),
        "xgboost",
        "gblinear boosters are not compiled",
    ),
    "xgboost-rank-pairwise": (_ranker, "xgboost", "objective 'rank:pairwise' is not compiled"),
    "lightgbm-linear-tree": (
        lambda: _lgb({"objective": "regression", "linear_tree": True}),
        "lightgbm",
        "linear trees are not compiled",
    ),
    "lightgbm-custom-objective": (
        lambda: _lgb({"objective": _squared_error}),
        "lightgbm",
        "a custom objective is not compiled",
    ),
    "sklearn-logistic-regression": (
        lambda: _sklearn(linear_model.LogisticRegression(), missing=False),
        "sklearn",
        "LogisticRegression is not a tree ensemble",
    ),
    "sklearn-hist-gradient-boosting": (
        lambda: _sklearn(ensemble.HistGradientBoostingClassifier(max_iter=5)),
        "sklearn",
        "HistGradientBoostingClassifier is not a tree ensemble",
    ),
    "flavor-onnx": (
        lambda: _xgb({"objective": "binary:logistic"}),
        "onnx",
        "the onnx flavor has no compiled predictor",
    ),
    "flavor-pyfunc": (
        lambda: _xgb({"objective": "binary:logistic"}),
        "pyfunc",
        "the pyfunc flavor has no compiled predictor",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_not_compilable_stays_native_with_its_reason(case: str) -> None:
    make, flavor, reason = REFUSED[case]
    with warnings.catch_warnings():  # xgboost >= 3.4 warns that gblinear is deprecated
        warnings.simplefilter("ignore")
        native = make()
        choice = choose(native, flavor)
    assert choice.kind == "native"
    assert choice.model is native
    assert choice.reason.startswith("native: ") and reason in choice.reason, choice.reason
    assert choice.row_s is None and choice.cached is False


def test_xgboost_custom_objective_keeps_the_configured_one() -> None:
    """A Python ``obj=`` leaves the booster's configured objective (here the default,
    reg:squarederror) in its config, and ``inplace_predict`` answers with that objective's
    transform: so it compiles, and must agree."""
    native = _xgb({"max_depth": 3}, rounds=10, obj=_squared_error)
    choice = choose(native, "xgboost")
    assert choice.kind == "compiled", choice.reason
    rows = fresh_rows(DATA.x, 2000, seed=21, missing=True)
    assert_agrees(native.predict(rows), choice.model.predict(rows), classes=False)


def test_native_mode_does_not_convert(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path / "artifacts"))
    digest = store.put_bytes(b"a model package")
    native = _xgb({"objective": "binary:logistic"})
    choice = choose(native, "xgboost", "native", artifacts=store, digest=digest)
    assert (choice.kind, choice.reason) == ("native", "native (asked for)")
    assert choice.model is native and choice.prepare_s == 0.0
    assert not (tmp_path / "artifacts" / "derived").exists()  # nothing converted, nothing kept
    auto = choose(native, "xgboost", "auto", artifacts=store, digest=digest)
    assert auto.kind == "compiled" and (tmp_path / "artifacts" / "derived").is_dir()


def test_compiled_mode_still_refuses_what_is_not_equal() -> None:
    native = _xgb({"objective": "rank:pairwise"})
    choice = choose(native, "xgboost", "compiled")
    assert choice.kind == "native" and "rank:pairwise" in choice.reason


@pytest.mark.parametrize(
    "estimator",
    [
        ensemble.RandomForestClassifier(n_estimators=3, random_state=0),
        ensemble.ExtraTreesClassifier(n_estimators=3, random_state=0),
    ],
    ids=["RandomForestClassifier", "ExtraTreesClassifier"],
)
def test_multi_output_classifier_never_raises(estimator: object) -> None:
    """Two label columns: skl2onnx writes one tree-ensemble node per output."""
    labels = np.c_[DATA.binary, DATA.three]
    native = SklearnLoaded(estimator.fit(DATA.clean, labels))  # type: ignore[attr-defined]
    choice = choose(native, "sklearn")
    if choice.kind == "compiled":
        rows = fresh_rows(DATA.clean, 1000, seed=22, missing=False)
        assert_agrees(native.predict(rows), choice.model.predict(rows), classes=True)
    else:
        assert choice.model is native and choice.reason.startswith("native: ")


def test_a_digest_key_without_a_store_or_store_without_digest_does_not_cache(
    tmp_path: Path,
) -> None:
    store = FsspecArtifactStore(str(tmp_path / "artifacts"))
    native = _xgb({"objective": "rank:pairwise"})
    choose(native, "xgboost", artifacts=store)
    choose(native, "xgboost", digest=sha256(b"x"))
    assert not (tmp_path / "artifacts").exists()
