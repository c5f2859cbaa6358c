"""The xgboost flavor: native files (JSON, UBJSON, extension-less) and in-memory boosters."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

from modelyard.domain import Trust
from modelyard.errors import InvalidModelFile, SignatureMismatch
from modelyard.runtimes import LoadedModel, SavedModel
from modelyard.runtimes.xgboost_runtime import XGBoostRuntime

RT = XGBoostRuntime()


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return x, y


@pytest.fixture(scope="module")
def booster(data: tuple[np.ndarray, np.ndarray]) -> xgb.Booster:
    x, y = data
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=10)


def roundtrip(source: object, tmp_path: Path) -> tuple[SavedModel, LoadedModel]:
    dest = tmp_path / "package"
    dest.mkdir(parents=True)
    saved = RT.save(source, dest, trust=Trust())
    assert sorted(p.name for p in dest.iterdir()) == ["model.ubj"]
    return saved, RT.load(dest, saved)


def test_booster_round_trip_answers_probabilities(booster, data, tmp_path) -> None:
    x, _ = data
    saved, loaded = roundtrip(booster, tmp_path)
    assert saved.model_format == "ubj"
    assert saved.trust == Trust()
    out = loaded.predict(x)
    np.testing.assert_allclose(out, booster.predict(xgb.DMatrix(x)), rtol=1e-6)
    assert out.shape == (len(x),)
    assert ((out > 0) & (out < 1)).all()


def test_sklearn_api_model_round_trip(data, tmp_path) -> None:
    x, y = data
    clf = xgb.XGBClassifier(n_estimators=8, max_depth=2, n_jobs=1).fit(x, y)
    _, loaded = roundtrip(clf, tmp_path)
    np.testing.assert_allclose(loaded.predict(x), clf.predict_proba(x)[:, 1], rtol=1e-6)


def test_file_without_extension_is_read_as_ubjson(booster, data, tmp_path) -> None:
    # SageMaker's XGBoost container writes its model as "xgboost-model", UBJSON, no extension.
    source = tmp_path / "xgboost-model"
    source.write_bytes(booster.save_raw("ubj"))
    saved, loaded = roundtrip(source, tmp_path)
    assert saved.options["source_format"] == "ubj"
    np.testing.assert_allclose(loaded.predict(data[0]), booster.inplace_predict(data[0]))


def test_json_file_round_trip(booster, data, tmp_path) -> None:
    source = tmp_path / "model.json"
    booster.save_model(str(source))
    saved, loaded = roundtrip(str(source), tmp_path)
    assert saved.options["source_format"] == "json"
    np.testing.assert_allclose(loaded.predict(data[0]), booster.inplace_predict(data[0]))


def test_signature_hint_without_and_with_feature_names(booster, data, tmp_path) -> None:
    _, loaded = roundtrip(booster, tmp_path / "a")
    hint = loaded.signature_hint()
    assert hint is not None
    assert hint.n_features == 30
    assert hint.feature_names is None

    x, y = data
    frame = pd.DataFrame(x, columns=[f"f_{i}" for i in range(x.shape[1])])
    named = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(frame, label=y), 3)
    _, loaded = roundtrip(named, tmp_path / "b")
    hint = loaded.signature_hint()
    assert hint is not None
    assert hint.feature_names == list(frame.columns)
    assert {c.dtype for c in hint.inputs} == {"float32"}
    np.testing.assert_allclose(loaded.predict(frame), named.inplace_predict(frame))


def test_wrong_feature_count_is_a_signature_mismatch(booster, data, tmp_path) -> None:
    _, loaded = roundtrip(booster, tmp_path)
    with pytest.raises(SignatureMismatch, match="expected 30 features, got 5"):
        loaded.predict(data[0][:, :5])


def test_a_file_that_is_not_a_model_is_refused(tmp_path) -> None:
    source = tmp_path / "notes.json"
    source.write_text("this is not a model\n")
    dest = tmp_path / "package"
    dest.mkdir()
    with pytest.raises(InvalidModelFile, match=r"notes\.json"):
        RT.save(source, dest, trust=Trust())


def test_an_empty_file_is_refused_not_a_process_abort(tmp_path) -> None:
    # XGBoost's C++ calls terminate() on an empty buffer: the whole CLI died (exit 134).
    source = tmp_path / "empty.json"
    source.write_bytes(b"")
    dest = tmp_path / "package"
    dest.mkdir()
    with pytest.raises(InvalidModelFile, match=r"empty\.json is empty"):
        RT.save(source, dest, trust=Trust())


def test_a_pickled_booster_is_refused_with_advice(booster, tmp_path) -> None:
    source = tmp_path / "xgboost-model"
    source.write_bytes(pickle.dumps(booster))
    with pytest.raises(InvalidModelFile, match=r"pickle.*save_model"):
        RT.save(source, tmp_path, trust=Trust())


def test_missing_path_and_foreign_object_are_refused(tmp_path) -> None:
    with pytest.raises(InvalidModelFile, match="no such file"):
        RT.save(tmp_path / "absent.ubj", tmp_path, trust=Trust())
    with pytest.raises(InvalidModelFile, match="not an XGBoost model: dict"):
        RT.save({"weights": [1, 2]}, tmp_path, trust=Trust())


def test_unfitted_sklearn_api_model_is_refused(tmp_path) -> None:
    with pytest.raises(InvalidModelFile, match="not fitted"):
        RT.save(xgb.XGBRegressor(), tmp_path, trust=Trust())
