"""``CompiledTrees`` refuses what the native model refuses, and leaves tables to it."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn import ensemble

from modelyard.errors import InvalidModelFile, SignatureMismatch
from modelyard.runtimes.base import LoadedModel
from modelyard.runtimes.sklearn_runtime import SklearnLoaded
from modelyard.runtimes.trees import choose, converters
from modelyard.runtimes.trees.compiled import LAYOUT_KEY, CompiledTrees
from tests.runtimes.trees._models import (
    FEATURES,
    Data,
    assert_agrees,
    lgb_model,
    training_data,
    xgb_model,
)

DATA: Data = training_data()
NAMES = [f"f{j}" for j in range(FEATURES)]


def _compiled(native: LoadedModel, flavor: str) -> CompiledTrees:
    choice = choose(native, flavor)
    assert isinstance(choice.model, CompiledTrees), choice.reason
    return choice.model


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[LoadedModel, CompiledTrees]]:
    gbr = SklearnLoaded(
        ensemble.GradientBoostingRegressor(n_estimators=10, random_state=0).fit(
            DATA.clean, DATA.real
        )
    )
    named = SklearnLoaded(
        ensemble.GradientBoostingRegressor(n_estimators=10, random_state=0).fit(
            pd.DataFrame(DATA.clean, columns=NAMES), DATA.real
        )
    )
    xgb_native = xgb_model(DATA, "binary:logistic", rounds=10)
    lgb_native = lgb_model(DATA, "regression", rounds=10)
    return {
        "sklearn": (gbr, _compiled(gbr, "sklearn")),
        "sklearn-named": (named, _compiled(named, "sklearn")),
        "xgboost": (xgb_native, _compiled(xgb_native, "xgboost")),
        "lightgbm": (lgb_native, _compiled(lgb_native, "lightgbm")),
    }


FLAVORS = ["sklearn", "xgboost", "lightgbm"]
BAD_SHAPES = {
    "too narrow": np.zeros((2, FEATURES - 1)),
    "too wide": np.zeros((2, FEATURES + 1)),
    "one row as 1-D": np.zeros(FEATURES),
    "3-D": np.zeros((2, FEATURES, 1)),
}


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("shape", list(BAD_SHAPES))
def test_wrong_shape_is_a_signature_mismatch_like_native(
    models: dict[str, tuple[LoadedModel, CompiledTrees]], flavor: str, shape: str
) -> None:
    native, compiled = models[flavor]
    data = BAD_SHAPES[shape]
    with pytest.raises(SignatureMismatch):
        native.predict(data)
    with pytest.raises(SignatureMismatch, match="expected"):
        compiled.predict(data)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_text_is_a_signature_mismatch(
    models: dict[str, tuple[LoadedModel, CompiledTrees]], flavor: str
) -> None:
    _, compiled = models[flavor]
    with pytest.raises(SignatureMismatch, match="numbers"):
        compiled.predict([["a"] * FEATURES])


def test_nan_refused_where_the_native_refuses_it(
    models: dict[str, tuple[LoadedModel, CompiledTrees]],
) -> None:
    native, compiled = models["sklearn"]  # GradientBoostingRegressor takes no missing values
    assert compiled.layout.allow_missing is False
    rows = DATA.clean[:3].copy()
    rows[1, 4] = np.nan
    with pytest.raises(SignatureMismatch):
        native.predict(rows)
    with pytest.raises(SignatureMismatch, match="missing values"):
        compiled.predict(rows)
    assert_agrees(native.predict(DATA.clean[:3]), compiled.predict(DATA.clean[:3]), False)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinity_refused_where_the_native_refuses_it(
    models: dict[str, tuple[LoadedModel, CompiledTrees]], value: float
) -> None:
    """scikit-learn refuses infinite values; an answer from the compiled predictor for a
    request the native model answers with an error is a different answer."""
    native, compiled = models["sklearn"]
    rows = DATA.clean[:2].copy()
    rows[0, 0] = value
    with pytest.raises(SignatureMismatch):
        native.predict(rows)
    with pytest.raises(SignatureMismatch):
        compiled.predict(rows)


def test_a_dataframe_goes_to_the_native_model_unchanged(
    models: dict[str, tuple[LoadedModel, CompiledTrees]],
) -> None:
    native, compiled = models["lightgbm"]
    rows = DATA.x[:50]
    # the graph's float32 leaves differ from LightGBM's doubles in the last bits …
    assert not np.array_equal(compiled.predict(rows), native.predict(rows))
    # … so a bit-identical answer for a table shows that the native model gave it
    frame = pd.DataFrame(rows)
    assert np.array_equal(compiled.predict(frame), native.predict(frame))


def test_a_dataframe_keeps_the_native_column_name_check(
    models: dict[str, tuple[LoadedModel, CompiledTrees]],
) -> None:
    native, compiled = models["sklearn-named"]
    frame = pd.DataFrame(DATA.clean[:5], columns=NAMES)
    assert np.array_equal(compiled.predict(frame), native.predict(frame))
    shuffled = frame[NAMES[::-1]]  # same width, columns in another order
    with pytest.raises(SignatureMismatch, match="feature names"):
        native.predict(shuffled)
    with pytest.raises(SignatureMismatch, match="feature names"):
        compiled.predict(shuffled)


def test_signature_hint_is_the_native_one(
    models: dict[str, tuple[LoadedModel, CompiledTrees]],
) -> None:
    native, compiled = models["sklearn-named"]
    hint = compiled.signature_hint()
    assert hint is not None and hint == native.signature_hint()
    assert [c.name for c in hint.inputs] == NAMES


def test_graph_without_a_layout_is_refused(
    models: dict[str, tuple[LoadedModel, CompiledTrees]],
) -> None:
    native, _ = models["xgboost"]
    proto = onnx.load_from_string(converters.xgboost(native))
    assert [p.key for p in proto.metadata_props] == [LAYOUT_KEY]
    del proto.metadata_props[:]
    with pytest.raises(InvalidModelFile, match="layout"):
        CompiledTrees(proto.SerializeToString(), native)


def test_bytes_that_are_no_graph_are_refused(
    models: dict[str, tuple[LoadedModel, CompiledTrees]],
) -> None:
    native, _ = models["xgboost"]
    with pytest.raises(InvalidModelFile, match="onnxruntime cannot run"):
        CompiledTrees(b"not an onnx graph", native)
