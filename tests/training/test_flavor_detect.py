"""Telling a trained model's flavor from the files a script left in SM_MODEL_DIR."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import pytest
import skops.io as sio
import xgboost as xgb
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from modelyard.errors import InvalidInput
from modelyard.training.flavor_detect import classify_file, detect_flavor, find_model_file


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return x[:200], y[:200]


@pytest.fixture(scope="module")
def booster(data: tuple[np.ndarray, np.ndarray]) -> xgb.Booster:
    x, y = data
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=3)


@pytest.fixture(scope="module")
def estimator(data: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    x, y = data
    return LogisticRegression(max_iter=5000).fit(x, y)


@pytest.fixture(scope="module")
def models(
    tmp_path_factory: pytest.TempPathFactory,
    data: tuple[np.ndarray, np.ndarray],
    booster: xgb.Booster,
    estimator: LogisticRegression,
) -> dict[str, Path]:
    """One real saved model per format, each in a folder of its own."""
    x, y = data
    root = tmp_path_factory.mktemp("models")
    out: dict[str, Path] = {}

    def folder(name: str) -> Path:
        path = root / name
        path.mkdir()
        return path

    # SageMaker's name: UBJSON without an extension (saved as .ubj: no-extension warns).
    booster.save_model(str(folder("xgb_ubj") / "tmp.ubj"))
    out["xgb_ubj"] = (root / "xgb_ubj" / "tmp.ubj").rename(root / "xgb_ubj" / "xgboost-model")
    out["xgb_json"] = folder("xgb_json") / "booster.json"
    booster.save_model(str(out["xgb_json"]))
    lgb_model = lgb.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1},
        lgb.Dataset(x, label=y),
        num_boost_round=3,
    )
    out["lgb"] = folder("lgb") / "model.txt"
    lgb_model.save_model(str(out["lgb"]))
    out["skops"] = folder("skops") / "estimator.skops"
    sio.dump(estimator, out["skops"])
    out["onnx"] = folder("onnx") / "classifier.onnx"
    out["onnx"].write_bytes(to_onnx(estimator, x[:1].astype(np.float32)).SerializeToString())
    out["joblib"] = folder("joblib") / "model.joblib"
    joblib.dump(estimator, out["joblib"])
    out["pkl"] = folder("pkl") / "estimator.pkl"
    out["pkl"].write_bytes(pickle.dumps(estimator))
    return out


@pytest.mark.parametrize(
    ("key", "flavor"),
    [
        ("xgb_ubj", "xgboost"),
        ("xgb_json", "xgboost"),
        ("lgb", "lightgbm"),
        ("skops", "sklearn"),
        ("onnx", "onnx"),
        ("joblib", "sklearn"),
        ("pkl", "sklearn"),
    ],
)
def test_each_flavor_is_detected_from_a_real_saved_model(models, key, flavor) -> None:
    path = models[key]
    assert detect_flavor(path.parent) == (flavor, path)
    assert find_model_file(path.parent, flavor) == path
    assert detect_flavor(path) == (flavor, path)  # a single file is accepted too


def test_xgboost_by_content_whatever_the_extension(booster, tmp_path) -> None:
    booster.save_model(str(tmp_path / "tmp.json"))
    (tmp_path / "tmp.json").rename(tmp_path / "weights.bin")
    assert classify_file(tmp_path / "weights.bin") == "xgboost"


def test_files_that_are_not_models_are_not_candidates(models, tmp_path) -> None:
    (tmp_path / "metrics.json").write_text('{"auc": 0.9}')
    (tmp_path / "notes.txt").write_text("tree\nnot a lightgbm model\n")
    (tmp_path / "fake.pkl").write_text("not a pickle at all")
    (tmp_path / "model.ubj").write_bytes(models["xgb_ubj"].read_bytes())
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("def model_fn(d): ...\n")
    (tmp_path / ".hidden.onnx").write_bytes(models["onnx"].read_bytes())
    assert detect_flavor(tmp_path) == ("xgboost", tmp_path / "model.ubj")


def test_several_candidates_prefer_the_one_named_model(models, tmp_path) -> None:
    (tmp_path / "model.onnx").write_bytes(models["onnx"].read_bytes())
    (tmp_path / "checkpoint.txt").write_bytes(models["lgb"].read_bytes())
    assert detect_flavor(tmp_path) == ("onnx", tmp_path / "model.onnx")
    # The explicit flavor picks its own file even when another is preferred by name.
    assert find_model_file(tmp_path, "lightgbm") == tmp_path / "checkpoint.txt"


def test_xgboost_model_is_preferred_by_name(models, tmp_path) -> None:
    (tmp_path / "xgboost-model").write_bytes(models["xgb_ubj"].read_bytes())
    (tmp_path / "early.json").write_bytes(models["xgb_json"].read_bytes())
    assert detect_flavor(tmp_path) == ("xgboost", tmp_path / "xgboost-model")


def test_ambiguous_folder_lists_the_candidates(models, tmp_path) -> None:
    (tmp_path / "a.onnx").write_bytes(models["onnx"].read_bytes())
    (tmp_path / "b.skops").write_bytes(models["skops"].read_bytes())
    with pytest.raises(InvalidInput, match=r"a\.onnx \(onnx\).*b\.skops \(sklearn\)"):
        detect_flavor(tmp_path)
    (tmp_path / "model.onnx").write_bytes(models["onnx"].read_bytes())
    (tmp_path / "model.skops").write_bytes(models["skops"].read_bytes())
    with pytest.raises(InvalidInput, match=r"model\.onnx \(onnx\), model\.skops \(sklearn\)"):
        detect_flavor(tmp_path)


def test_empty_or_unrecognisable_folder_lists_what_it_holds(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        detect_flavor(tmp_path)
    (tmp_path / "readme.md").write_text("hello")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "weights.dat").write_bytes(b"\x00\x01")
    with pytest.raises(InvalidInput, match=r"files found: readme\.md, sub/weights\.dat"):
        detect_flavor(tmp_path)
    with pytest.raises(InvalidInput, match="no such model folder"):
        detect_flavor(tmp_path / "absent")


def test_find_model_file_for_an_explicit_flavor(models, tmp_path) -> None:
    (tmp_path / "model.skops").write_bytes(models["skops"].read_bytes())
    with pytest.raises(InvalidInput, match=r"no xgboost model file .*model\.skops"):
        find_model_file(tmp_path, "xgboost")
    # A folder flavor (or one detection does not know) gets the folder: its runtime decides.
    assert find_model_file(tmp_path, "pyfunc") == tmp_path
    assert find_model_file(tmp_path, "somebody-elses-flavor") == tmp_path
