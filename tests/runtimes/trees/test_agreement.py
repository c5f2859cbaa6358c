"""Every flavor and objective the engine compiles: ``choose`` compiles it, and the compiled
predictor answers fresh rows (across the features' range, with missing values where the model
takes them) as the native model does: same shape, same dtype, classes exactly, numbers within
1e-6 * max(1, |native|).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn import ensemble

from modelyard.runtimes.base import LoadedModel
from modelyard.runtimes.sklearn_runtime import SklearnLoaded
from modelyard.runtimes.trees import choose, converters
from modelyard.runtimes.trees.compiled import ENGINE, CompiledTrees
from modelyard.runtimes.xgboost_runtime import XGBoostLoaded
from tests.runtimes.trees._models import (
    SKLEARN_NAMES,
    Data,
    assert_agrees,
    fresh_rows,
    lgb_model,
    sklearn_model,
    training_data,
    xgb_model,
)

FRESH = 4000


@pytest.fixture(scope="module")
def data() -> Data:
    return training_data()


def _compiled(native: LoadedModel, flavor: str) -> CompiledTrees:
    choice = choose(native, flavor)
    assert choice.kind == "compiled", choice.reason
    assert choice.reason.startswith(f"compiled ({ENGINE}): ")
    assert isinstance(choice.model, CompiledTrees) and choice.model.native is native
    assert choice.row_s is not None and choice.row_s > 0
    assert choice.native_row_s is not None and choice.native_row_s > 0
    assert choice.cached is False
    return choice.model


# objective -> (classes, columns of the answer: 0 for one number per row)
XGB = {
    "binary:logistic": (False, 0),
    "multi:softprob": (False, 3),
    "multi:softmax": (True, 0),
    "reg:squarederror": (False, 0),
}


@pytest.mark.parametrize("objective", list(XGB))
def test_xgboost_compiles_and_agrees(data: Data, objective: str) -> None:
    native = xgb_model(data, objective)
    compiled = _compiled(native, "xgboost")
    rows = fresh_rows(data.x, FRESH, seed=1, missing=True)
    classes, columns = XGB[objective]
    expected = native.predict(rows)
    assert expected.shape == ((FRESH, columns) if columns else (FRESH,))
    assert_agrees(expected, compiled.predict(rows), classes)
    assert compiled.layout.classifier is classes


LGB = {"binary": 0, "multiclass": 3, "regression": 0}


@pytest.mark.parametrize("objective", list(LGB))
def test_lightgbm_compiles_and_agrees(data: Data, objective: str) -> None:
    native = lgb_model(data, objective)
    compiled = _compiled(native, "lightgbm")
    rows = fresh_rows(data.x, FRESH, seed=2, missing=True)
    expected = native.predict(rows)
    columns = LGB[objective]
    assert expected.shape == ((FRESH, columns) if columns else (FRESH,))
    assert_agrees(expected, compiled.predict(rows), classes=False)


@pytest.mark.parametrize("name", SKLEARN_NAMES)
def test_sklearn_compiles_and_agrees(data: Data, name: str) -> None:
    native, missing = sklearn_model(data, name)
    compiled = _compiled(native, "sklearn")
    assert compiled.layout.allow_missing is missing
    rows = fresh_rows(data.x, FRESH, seed=3, missing=missing)
    classifier = hasattr(native.estimator, "classes_")
    assert_agrees(native.predict(rows), compiled.predict(rows), classes=classifier)


def _tied(classes: int, learning_rate: float, constant: bool) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels; on constant features every tree is one leaf of value 0, so the
    decision function is the prior's (0 for two classes: an exact tie), and with a tiny
    learning rate the classes' scores differ by ~1e-12 either way."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(120 * classes, 4))
    return (np.zeros_like(x) if constant else x), np.tile(np.arange(classes), 120)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize(
    ("learning_rate", "constant"), [(0.1, True), (1e-12, False)], ids=["exact", "within-1e-6"]
)
def test_gradient_boosting_ties_pick_the_class_scikit_learn_picks(
    classes: int, learning_rate: float, constant: bool
) -> None:
    # scikit-learn thresholds a binary model's decision function (>= 0: the second class) and
    # takes a multiclass model's first highest score; the compiled predictor took the first
    # class whenever the probabilities were within 1e-6.
    x, y = _tied(classes, learning_rate, constant)
    estimator = ensemble.GradientBoostingClassifier(
        n_estimators=5, learning_rate=learning_rate, random_state=0
    ).fit(x, y)
    native = SklearnLoaded(estimator)
    compiled = CompiledTrees(converters.sklearn(native), native)
    rows = np.random.default_rng(12).normal(size=(500, 4))
    expected = estimator.predict(rows)
    assert_agrees(expected, compiled.predict(rows), classes=True)
    # Verification now finds the two agree, so the compiled predictor serves.
    assert isinstance(_compiled(native, "sklearn"), CompiledTrees)


def test_forest_ties_pick_the_first_class_as_scikit_learn_does() -> None:
    x, y = _tied(2, 0.1, constant=True)
    estimator = ensemble.RandomForestClassifier(n_estimators=7, random_state=0).fit(x, y)
    native = SklearnLoaded(estimator)
    rows = np.random.default_rng(13).normal(size=(200, 4))
    compiled = CompiledTrees(converters.sklearn(native), native)
    assert_agrees(estimator.predict(rows), compiled.predict(rows), classes=True)


def test_multiclass_probabilities_keep_the_class_columns(data: Data) -> None:
    """(n, k) in class order: a permuted or transposed layout would still have the right
    shape, so each column is checked against the native one, and every class wins somewhere."""
    for native, flavor in (
        (xgb_model(data, "multi:softprob"), "xgboost"),
        (lgb_model(data, "multiclass"), "lightgbm"),
    ):
        compiled = _compiled(native, flavor)
        rows = fresh_rows(data.x, 1000, seed=4, missing=True)
        expected, got = native.predict(rows), compiled.predict(rows)
        assert got.shape == (1000, 3)
        assert set(np.argmax(expected, axis=1)) == {0, 1, 2}
        assert np.array_equal(np.argmax(got, axis=1), np.argmax(expected, axis=1))
        for k in range(3):
            assert_agrees(expected[:, k], got[:, k], classes=False)


@pytest.mark.parametrize(
    ("objective", "base_score"), [("binary:logistic", 0.2), ("reg:squarederror", 0.5)]
)
def test_xgboost_base_score_and_missing_directions(
    data: Data, objective: str, base_score: float
) -> None:
    native = xgb_model(data, objective, base_score=base_score)
    trees = native.booster.trees_to_dataframe()
    splits = trees[trees["Feature"] != "Leaf"]
    # the model sends missing values both ways, so both default directions are exercised
    assert (splits["Missing"] == splits["Yes"]).any() and (splits["Missing"] == splits["No"]).any()
    compiled = _compiled(native, "xgboost")
    rows = fresh_rows(data.x, FRESH, seed=5, missing=True)
    assert_agrees(native.predict(rows), compiled.predict(rows), classes=False)
    nothing = np.full((1, data.x.shape[1]), np.nan)
    assert_agrees(native.predict(nothing), compiled.predict(nothing), classes=False)


def test_xgboost_with_feature_names_compiles_and_keeps_them(data: Data) -> None:
    names = [f"feature_{j}" for j in range(data.x.shape[1])]
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4, "nthread": 1},
        xgb.DMatrix(data.x, label=data.binary, feature_names=names),
        num_boost_round=10,
    )
    native = XGBoostLoaded(booster)
    compiled = _compiled(native, "xgboost")
    assert native.booster.feature_names == names  # the native model is left as it was
    rows = fresh_rows(data.x, FRESH, seed=6, missing=True)
    assert_agrees(native.predict(rows), compiled.predict(rows), classes=False)
    frame = pd.DataFrame(rows[:20], columns=names)
    assert np.array_equal(compiled.predict(frame), native.predict(frame))
