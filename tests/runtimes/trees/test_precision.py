"""Where a compiled tree ensemble can go quietly wrong: float32 thresholds, categorical splits,
and float32 sums of regression outputs. Each case either compiles and agrees, or stays native
with a reason; never a compiled predictor that answers differently.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import onnxmltools
import onnxruntime as ort
import pandas as pd
import pytest
import xgboost as xgb
from onnxmltools.convert.common.data_types import FloatTensorType
from sklearn import ensemble

from modelyard.runtimes.lightgbm_runtime import LightGBMLoaded
from modelyard.runtimes.sklearn_runtime import SklearnLoaded
from modelyard.runtimes.trees import choose, converters, verify
from modelyard.runtimes.xgboost_runtime import XGBoostLoaded
from tests.runtimes.trees._models import (
    Data,
    assert_agrees,
    fresh_rows,
    lgb_model,
    training_data,
    xgb_model,
)


@pytest.fixture(scope="module")
def data() -> Data:
    return training_data()


# --- a LightGBM threshold strictly between two adjacent float32 values ------------------------


def _splits(booster: Any) -> list[dict[str, Any]]:
    """Every split node of a LightGBM booster's dump."""
    found = []
    for info in booster.dump_model()["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                found.append(node)
                stack += [node["left_child"], node["right_child"]]
    return found


@pytest.fixture(scope="module")
def between_float32() -> tuple[LightGBMLoaded, float, float, float]:
    """Feature 0 takes two adjacent float32 values ``a < b``, and the target follows it: every
    split on it lies strictly between them, where no float32 can stand for it."""
    rng = np.random.default_rng(11)
    a32 = np.float32(0.3)
    a, b = float(a32), float(np.nextafter(a32, np.float32(1)))
    x = rng.normal(size=(400, 3))
    x[:, 0] = np.where(rng.random(400) < 0.5, a, b)
    y = (x[:, 0] == b) + 0.1 * rng.normal(size=400)
    params = {"objective": "regression", "num_leaves": 4, "min_data_in_leaf": 5}
    booster = lgb.train(
        {**params, "verbose": -1, "num_threads": 1}, lgb.Dataset(x, y), num_boost_round=5
    )
    (threshold,) = {float(n["threshold"]) for n in _splits(booster) if n["split_feature"] == 0}
    return LightGBMLoaded(booster), a, b, threshold


def test_lightgbm_threshold_between_float32_values_compiles_and_agrees(
    between_float32: tuple[LightGBMLoaded, float, float, float],
) -> None:
    native, a, b, t = between_float32
    assert a < t < b and float(np.float32(t)) != t  # the trap is set
    choice = choose(native, "lightgbm")
    assert choice.kind == "compiled", choice.reason
    near = [a, np.nextafter(a, 1.0), np.nextafter(t, 0.0), t, np.nextafter(t, 1.0), b]
    rows = np.zeros((len(near), 3))
    rows[:, 0] = near
    expected = native.predict(rows)
    assert expected[0] != expected[-1]  # a and b go different ways: the split matters
    assert_agrees(expected, choice.model.predict(rows), classes=False)


def test_float32_thresholds_would_have_been_caught(
    between_float32: tuple[LightGBMLoaded, float, float, float],
) -> None:
    """onnxmltools' own graph (float32 input and thresholds) sends some rows at the threshold
    the wrong way, and the verification rows find them; the restored graph agrees on them."""
    native, _, b, _ = between_float32
    restored = converters.lightgbm(native)
    rows = verify.verification_rows(restored, 3, None, allow_missing=True)
    proto = onnxmltools.convert_lightgbm(
        native.booster, initial_types=[("input", FloatTensorType([None, 3]))], zipmap=False
    )
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])

    def float32_graph(x: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {"input": x.astype(np.float32)})[0]).ravel()

    expected = native.predict(rows)
    assert verify.compare(expected, float32_graph(rows), classes=False).differing > 0
    choice = choose(native, "lightgbm")
    assert verify.compare(expected, choice.model.predict(rows), classes=False).equal
    at_b = np.array([[b, 0.0, 0.0]])
    assert not verify.compare(native.predict(at_b), float32_graph(at_b), classes=False).equal


def test_lightgbm_graph_carries_the_boosters_double_thresholds(data: Data) -> None:
    native = lgb_model(data, "binary")
    in_graph = {(s.feature, s.threshold) for s in verify.splits(converters.lightgbm(native))}
    in_booster = {
        (n["split_feature"], float(n["threshold"]))
        for n in _splits(native.booster)
        if n["decision_type"] == "<="
    }
    assert in_graph == in_booster
    assert any(float(np.float32(t)) != t for _, t in in_graph)  # not float32 values


# --- categorical splits ---------------------------------------------------------------------


def test_lightgbm_categorical_feature_is_never_a_silent_wrong_answer() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(600, 4))
    x[:, 0] = rng.integers(0, 6, 600)
    y = np.isin(x[:, 0], [1, 4]) * 2.0 + x[:, 1]
    params = {"objective": "regression", "min_data_per_group": 5, "cat_smooth": 1}
    booster = lgb.train(
        {**params, "verbose": -1, "num_threads": 1},
        lgb.Dataset(x, y, categorical_feature=[0]),
        num_boost_round=10,
    )
    assert "==" in {n["decision_type"] for n in _splits(booster)}  # a categorical split
    native = LightGBMLoaded(booster)
    choice = choose(native, "lightgbm")
    if choice.kind == "compiled":
        rows = fresh_rows(x, 3000, seed=13, missing=True)
        rows[:1500, 0] = rng.integers(-1, 8, 1500)  # known, unseen and negative categories
        assert_agrees(native.predict(rows), choice.model.predict(rows), classes=False)
    else:
        assert choice.model is native
        assert choice.reason.startswith("native: ")
        assert "categor" in choice.reason or "differ" in choice.reason, choice.reason


def test_xgboost_categorical_feature_stays_native() -> None:
    rng = np.random.default_rng(14)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    frame["a"] = pd.Categorical(rng.integers(0, 4, 300))
    label = (frame["a"].cat.codes.to_numpy() % 2) + frame["b"].to_numpy()
    booster = xgb.train(
        {"objective": "reg:squarederror", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(frame, label=label, enable_categorical=True),
        num_boost_round=5,
    )
    native = XGBoostLoaded(booster)
    choice = choose(native, "xgboost")
    assert choice.kind == "native" and choice.model is native
    assert "categorical" in choice.reason


# --- float32 sums of regression outputs -----------------------------------------------------
# Targets near 30 with a spread of ~60: the partial sums over trees are far larger than the
# answers near 0, so summing leaves in another order or precision than the native library
# moves those answers by more than 1e-6. The engine must compile these models and agree with
# the native predictions on fresh rows, as it does for small targets.

WIDE_ROWS = 20_000


def test_xgboost_regression_with_wide_targets_compiles_and_agrees(data: Data) -> None:
    native = xgb_model(data, "reg:squarederror", label=data.wide)
    choice = choose(native, "xgboost")
    assert choice.kind == "compiled", choice.reason
    rows = fresh_rows(data.x, WIDE_ROWS, seed=15, missing=True)
    assert_agrees(native.predict(rows), choice.model.predict(rows), classes=False)


def test_lightgbm_regression_with_wide_targets_agrees_on_fresh_rows(data: Data) -> None:
    native = lgb_model(data, "regression", label=data.wide, num_leaves=31)
    choice = choose(native, "lightgbm")
    assert choice.kind == "compiled", choice.reason
    rows = fresh_rows(data.x, WIDE_ROWS, seed=7, missing=True)
    assert_agrees(native.predict(rows), choice.model.predict(rows), classes=False)


def test_sklearn_gradient_boosting_with_wide_targets_agrees_on_fresh_rows(data: Data) -> None:
    estimator = ensemble.GradientBoostingRegressor(n_estimators=20, random_state=0)
    native = SklearnLoaded(estimator.fit(data.clean, data.wide))
    choice = choose(native, "sklearn")
    assert choice.kind == "compiled", choice.reason
    rows = fresh_rows(data.clean, WIDE_ROWS, seed=7, missing=False)
    assert_agrees(native.predict(rows), choice.model.predict(rows), classes=False)
