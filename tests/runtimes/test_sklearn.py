"""The sklearn flavor: skops by default, pickles only with explicit trust."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelyard.domain import Trust
from modelyard.errors import InvalidModelFile, SignatureMismatch, UnsafeModelFormat
from modelyard.runtimes import LoadedModel, SavedModel
from modelyard.runtimes.sklearn_runtime import SklearnRuntime

RT = SklearnRuntime()
TREE = "sklearn.tree._tree.Tree"


class Doubler(TransformerMixin, BaseEstimator):
    """A user-defined transformer: a type skops does not trust by default."""

    def fit(self, x: np.ndarray, y: object = None) -> Doubler:
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x) * 2.0


class Detonator:
    """Unpickling this runs os.mkdir(marker): proof of whether anything was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return x, y


@pytest.fixture(scope="module")
def pipeline(data):
    x, y = data
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)


NO_TRUST = Trust()


def save(source: object, tmp_path: Path, trust: Trust = NO_TRUST) -> tuple[SavedModel, Path]:
    dest = tmp_path / "package"
    dest.mkdir(parents=True, exist_ok=True)
    return RT.save(source, dest, trust=trust), dest


def roundtrip(
    source: object, tmp_path: Path, trust: Trust = NO_TRUST
) -> tuple[SavedModel, LoadedModel]:
    saved, dest = save(source, tmp_path, trust)
    return saved, RT.load(dest, saved)


def test_estimator_is_stored_with_skops_and_predicts_labels(pipeline, data, tmp_path) -> None:
    x, _ = data
    saved, loaded = roundtrip(pipeline, tmp_path)
    assert saved.model_format == "skops"
    assert saved.trust == Trust()
    assert (tmp_path / "package" / "model.skops").is_file()
    np.testing.assert_array_equal(loaded.predict(x), pipeline.predict(x))


def test_skops_file_round_trip(pipeline, data, tmp_path) -> None:
    source = tmp_path / "model.skops"
    sio.dump(pipeline, source)
    _, loaded = roundtrip(source, tmp_path)
    np.testing.assert_array_equal(loaded.predict(data[0]), pipeline.predict(data[0]))


def test_tree_models_need_the_tree_type_trusted(data, tmp_path) -> None:
    x, y = data
    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(x, y)
    with pytest.raises(UnsafeModelFormat, match=TREE.replace(".", r"\.")):
        save(forest, tmp_path)
    assert not (tmp_path / "package" / "model.skops").exists()
    saved, loaded = roundtrip(forest, tmp_path, Trust(types=(TREE, "some.other.Type")))
    assert saved.trust.types == (TREE,)
    np.testing.assert_array_equal(loaded.predict(x), forest.predict(x))


def test_custom_type_refused_unless_listed(data, tmp_path) -> None:
    x, y = data
    model = make_pipeline(Doubler(), StandardScaler(), LogisticRegression()).fit(x, y)
    custom = f"{Doubler.__module__}.Doubler"
    source = tmp_path / "custom.skops"
    sio.dump(model, source)
    with pytest.raises(UnsafeModelFormat, match=r"Doubler.*Trust\(types="):
        save(source, tmp_path)
    saved, loaded = roundtrip(source, tmp_path, Trust(types=(custom,)))
    assert saved.trust.types == (custom,)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # The recorded trust is what loading checks: without it, skops refuses the type.
    with pytest.raises(UnsafeModelFormat):
        RT.load(tmp_path / "package", SavedModel("skops", Trust(), {}))


@pytest.mark.parametrize("writer", ["joblib", "joblib-zlib", "pickle-0", "pickle-5"])
def test_pickle_files_are_refused_by_content_and_accepted_with_trust(
    writer, pipeline, data, tmp_path
) -> None:
    source = tmp_path / "model.skops"  # the name lies: detection reads the content
    if writer.startswith("joblib"):
        joblib.dump(pipeline, source, compress=3 if writer.endswith("zlib") else 0)
    else:
        source.write_bytes(pickle.dumps(pipeline, protocol=int(writer[-1])))
    with pytest.raises(UnsafeModelFormat, match=r"--trust-pickle.*Trust\(pickle=True\)"):
        save(source, tmp_path)
    saved, loaded = roundtrip(source, tmp_path, Trust(pickle=True))
    assert saved.model_format == "pickle"
    assert saved.trust.pickle is True
    assert sorted(p.name for p in (tmp_path / "package").iterdir()) == ["model.pkl"]
    np.testing.assert_array_equal(loaded.predict(data[0]), pipeline.predict(data[0]))


def test_nothing_is_unpickled_without_trust(tmp_path) -> None:
    marker = tmp_path / "exploded"
    source = tmp_path / "model.joblib"
    source.write_bytes(pickle.dumps(Detonator(marker)))
    with pytest.raises(UnsafeModelFormat):
        save(source, tmp_path)
    dest = tmp_path / "package"
    (dest / "model.pkl").write_bytes(source.read_bytes())
    with pytest.raises(UnsafeModelFormat, match="--trust-pickle"):
        RT.load(dest, SavedModel("pickle", Trust(), {}))
    assert not marker.exists()


def test_feature_names_are_kept_and_arrays_accepted(data, tmp_path) -> None:
    x, y = data
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, y)
    _, loaded = roundtrip(model, tmp_path)
    hint = loaded.signature_hint()
    assert hint is not None
    assert hint.feature_names == list(frame.columns)
    expected = model.predict(frame)
    # An array gets the fitted names (no sklearn warning, which -W error would turn fatal).
    np.testing.assert_array_equal(loaded.predict(x), expected)
    np.testing.assert_array_equal(loaded.predict(frame), expected)
    with pytest.raises(SignatureMismatch, match="feature names"):
        loaded.predict(frame.rename(columns={"f0": "other"}))


def test_unnamed_model_hint_and_wrong_width(pipeline, data, tmp_path) -> None:
    _, loaded = roundtrip(pipeline, tmp_path)
    hint = loaded.signature_hint()
    assert hint is not None
    assert hint.n_features == 30
    assert hint.feature_names is None
    frame = pd.DataFrame(data[0])  # a DataFrame for a model fitted without names: no warning
    np.testing.assert_array_equal(loaded.predict(frame), pipeline.predict(data[0]))
    with pytest.raises(SignatureMismatch, match="expected 30 features, got 29"):
        loaded.predict(data[0][:, 1:])


def test_files_and_objects_that_are_not_models_are_refused(tmp_path) -> None:
    text = tmp_path / "model.txt"
    text.write_text("hello, I am not a model\n")
    with pytest.raises(InvalidModelFile, match=r"model\.txt"):
        save(text, tmp_path)
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "no schema here")
    with pytest.raises(InvalidModelFile, match="skops"):
        save(archive, tmp_path)
    with pytest.raises(InvalidModelFile, match="no such file"):
        save(tmp_path / "absent.skops", tmp_path)
    with pytest.raises(InvalidModelFile, match="not a scikit-learn estimator: dict"):
        save({"coef": [1.0]}, tmp_path)
    with pytest.raises(InvalidModelFile, match="not fitted"):
        save(LogisticRegression(), tmp_path)
