"""The lightgbm flavor: native text files and in-memory boosters."""

from __future__ import annotations

import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from modelyard.domain import Trust
from modelyard.errors import InvalidModelFile, SignatureMismatch
from modelyard.runtimes import LoadedModel, SavedModel
from modelyard.runtimes.lightgbm_runtime import LightGBMRuntime

RT = LightGBMRuntime()
PARAMS = {"objective": "regression", "num_leaves": 7, "verbose": -1, "num_threads": 1}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_diabetes(return_X_y=True)
    return x, y


@pytest.fixture(scope="module")
def booster(data: tuple[np.ndarray, np.ndarray]) -> lgb.Booster:
    x, y = data
    return lgb.train(PARAMS, lgb.Dataset(x, label=y), num_boost_round=10)


def roundtrip(source: object, tmp_path: Path) -> tuple[SavedModel, LoadedModel]:
    dest = tmp_path / "package"
    dest.mkdir(parents=True)
    saved = RT.save(source, dest, trust=Trust())
    assert sorted(p.name for p in dest.iterdir()) == ["model.txt"]
    return saved, RT.load(dest, saved)


def test_booster_round_trip(booster, data, tmp_path) -> None:
    x, _ = data
    saved, loaded = roundtrip(booster, tmp_path)
    assert saved.model_format == "text"
    assert saved.trust == Trust()
    out = loaded.predict(x)
    assert out.shape == (len(x),)
    np.testing.assert_allclose(out, booster.predict(x))


def test_text_file_round_trip(booster, data, tmp_path) -> None:
    source = tmp_path / "model.txt"
    booster.save_model(str(source))
    _, loaded = roundtrip(source, tmp_path / "out")
    np.testing.assert_allclose(loaded.predict(data[0]), booster.predict(data[0]))


def test_sklearn_api_model_with_feature_names(data, tmp_path) -> None:
    x, y = data
    frame = pd.DataFrame(x, columns=[f"c{i}" for i in range(x.shape[1])])
    reg = lgb.LGBMRegressor(n_estimators=8, num_leaves=5, verbose=-1, n_jobs=1).fit(frame, y)
    _, loaded = roundtrip(reg, tmp_path)
    np.testing.assert_allclose(loaded.predict(frame), reg.predict(frame))
    hint = loaded.signature_hint()
    assert hint is not None
    assert hint.feature_names == list(frame.columns)


def test_signature_hint_treats_generated_names_as_unnamed(booster, tmp_path) -> None:
    _, loaded = roundtrip(booster, tmp_path)
    hint = loaded.signature_hint()
    assert hint is not None
    assert hint.n_features == 10
    assert hint.feature_names is None


def test_wrong_feature_count_is_a_signature_mismatch(booster, data, tmp_path) -> None:
    _, loaded = roundtrip(booster, tmp_path)
    with pytest.raises(SignatureMismatch, match="expected 10 features, got 3"):
        loaded.predict(data[0][:, :3])
    with pytest.raises(SignatureMismatch, match="2-D"):
        loaded.predict(data[0][0])


def test_a_file_that_is_not_a_model_is_refused(tmp_path) -> None:
    source = tmp_path / "model.txt"
    source.write_text("tree\nnot really a model\n")
    with pytest.raises(InvalidModelFile, match=r"model\.txt"):
        RT.save(source, tmp_path, trust=Trust())


def test_loading_a_file_that_is_not_a_model_prints_nothing_of_lightgbms_own(
    booster: lgb.Booster, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # LightGBM wrote "[LightGBM] [Fatal] Unknown model format …" on fd 2 before our error:
    # a file that does not begin as a LightGBM text model is refused before LightGBM reads it.
    for text in ("not a model\n", "treehouse\n", "\x00\xff garbage", ""):
        source = tmp_path / "model.txt"
        source.write_text(text)
        with pytest.raises(InvalidModelFile, match=r"not a LightGBM model file: .*model\.txt"):
            RT.save(source, tmp_path, trust=Trust())
        package = tmp_path / "package"
        package.mkdir(exist_ok=True)
        (package / "model.txt").write_text(text)
        with pytest.raises(InvalidModelFile, match="not a LightGBM model file"):
            RT.load(package, SavedModel(model_format="text", trust=Trust(), options={}))
    out, err = capfd.readouterr()
    assert "LightGBM" not in err and "LightGBM" not in out, (out, err)
    # A good model still loads, and stderr is this process's again afterwards.
    roundtrip(booster, tmp_path / "good")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_missing_path_foreign_object_and_unfitted_model_are_refused(tmp_path) -> None:
    with pytest.raises(InvalidModelFile, match="no such file"):
        RT.save(tmp_path / "absent.txt", tmp_path, trust=Trust())
    with pytest.raises(InvalidModelFile, match="not a LightGBM model: list"):
        RT.save([1, 2, 3], tmp_path, trust=Trust())
    with pytest.raises(InvalidModelFile, match="not fitted"):
        RT.save(lgb.LGBMClassifier(), tmp_path, trust=Trust())


def test_a_frame_is_matched_to_the_boosters_names_by_lightgbms_own_rule(data, tmp_path) -> None:
    # LightGBM keeps "mean radius" as "mean_radius" (it writes spaces as underscores), and
    # predicts a DataFrame by position: columns in another order gave silently wrong answers.
    x, y = data
    names = [f"col {i}" for i in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=names)
    reg = lgb.LGBMRegressor(n_estimators=8, num_leaves=5, verbose=-1, n_jobs=1).fit(frame, y)
    _, loaded = roundtrip(reg, tmp_path)
    assert loaded.signature_hint().feature_names == [n.replace(" ", "_") for n in names]
    assert [loaded.stored_feature_name(n) for n in names] == reg.booster_.feature_name()
    np.testing.assert_allclose(loaded.predict(frame), reg.predict(frame))
    with pytest.raises(SignatureMismatch, match="in another order") as shuffled:
        loaded.predict(frame[names[::-1]])
    assert "'col 9', 'col 8'" in shuffled.value.message
    with pytest.raises(SignatureMismatch, match="unexpected"):
        loaded.predict(frame.rename(columns={"col 0": "other"}))
    np.testing.assert_allclose(loaded.predict(x), reg.predict(frame))  # an array: by position
