"""The built-in algorithms and their hyperparameters, on small real data sets."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from modelyard.domain import Trust
from modelyard.errors import InvalidInput
from modelyard.runtimes import get_runtime
from modelyard.training.algorithms import ALGORITHMS, Algorithm, TrainedModel, get_algorithm
from modelyard.training.algorithms._prepare import Task, infer_task
from modelyard.training.data import Dataset, read_dataset
from modelyard.training.hyperparameters import Hyperparameter, validate

Split = tuple[Dataset, Dataset]
NUMERIC = ["xgboost", "lightgbm", "linear-learner", "kmeans", "random-forest"]
SUPERVISED_NUMERIC = ["xgboost", "lightgbm", "linear-learner", "random-forest"]
FAST = {  # small settings that keep the suite quick
    "xgboost": {"num_round": "20"},
    "lightgbm": {"num_round": "20"},
    "linear-learner": {},
    "kmeans": {"k": "3"},
    "random-forest": {"n_estimators": "20"},
    "text-classifier": {},
}


def split(frame: pd.DataFrame, target: pd.Series, stratify: bool = True) -> Split:
    x_train, x_valid, y_train, y_valid = train_test_split(
        frame, target, test_size=0.25, random_state=0, stratify=target if stratify else None
    )
    return (
        Dataset(x_train.reset_index(drop=True), y_train.reset_index(drop=True), ("train",)),
        Dataset(x_valid.reset_index(drop=True), y_valid.reset_index(drop=True), ("validation",)),
    )


@pytest.fixture(scope="module")
def cancer() -> Split:
    data = load_breast_cancer(as_frame=True)
    return split(data.data, data.target.rename("label"))


@pytest.fixture(scope="module")
def iris() -> Split:
    data = load_iris(as_frame=True)
    return split(data.data, data.target.rename("label"))


@pytest.fixture(scope="module")
def diabetes() -> Split:
    data = load_diabetes(as_frame=True)
    return split(data.data, data.target.rename("label"), stratify=False)


POSITIVE = ["great", "excellent", "wonderful", "delightful", "superb", "lovely", "fantastic"]
NEGATIVE = ["awful", "terrible", "dreadful", "horrible", "poor", "disappointing", "bland"]
NOUNS = ["meal", "service", "film", "hotel", "book", "phone", "coffee", "concert"]
FILLER = ["and I would say so again", "overall", "to be honest", "this time", "as expected"]


def reviews(count: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(count):
        good = i % 2 == 0
        words = POSITIVE if good else NEGATIVE
        texts.append(
            f"The {rng.choice(NOUNS)} was {rng.choice(words)} {rng.choice(FILLER)}, "
            f"really {rng.choice(words)}."
        )
        labels.append("good" if good else "bad")
    return pd.DataFrame({"review": texts}), pd.Series(labels, name="sentiment")


@pytest.fixture(scope="module")
def corpus() -> Split:
    train_x, train_y = reviews(160, seed=1)
    valid_x, valid_y = reviews(60, seed=2)
    return Dataset(train_x, train_y, ("t",)), Dataset(valid_x, valid_y, ("v",))


def recorder() -> tuple[list[tuple[int, int, dict[str, float]]], Callable[..., None]]:
    calls: list[tuple[int, int, dict[str, float]]] = []

    def progress(step: int, total: int, metrics: dict[str, float]) -> None:
        calls.append((step, total, dict(metrics)))

    return calls, progress


# --- registry of algorithms, hyperparameters ------------------------------------------------


def test_algorithms_by_name() -> None:
    assert sorted(ALGORITHMS) == [
        "kmeans",
        "lightgbm",
        "linear-learner",
        "random-forest",
        "text-classifier",
        "xgboost",
    ]
    for name, cls in ALGORITHMS.items():
        algorithm = get_algorithm(name)
        assert isinstance(algorithm, cls) and algorithm.name == name
        assert algorithm.flavor in ("xgboost", "lightgbm", "sklearn")
        assert validate(algorithm.hyperparameters, {}) == algorithm.validate({})
        for spec in algorithm.hyperparameters.values():  # every default fits its own spec
            assert spec.default is None or spec.convert(spec.default) == spec.default
    assert get_algorithm("kmeans").supervised is False
    with pytest.raises(InvalidInput, match=r"unknown algorithm 'svm'.*kmeans, lightgbm"):
        get_algorithm("svm")


def test_hyperparameters_convert_strings_and_fill_defaults() -> None:
    specs = ALGORITHMS["xgboost"].hyperparameters
    hp = validate(specs, {"num_round": "1e3", "eta": "0.05", "objective": "binary:logistic"})
    assert hp["num_round"] == 1000 and isinstance(hp["num_round"], int)
    assert hp["eta"] == 0.05
    assert hp["max_depth"] == 6 and hp["nthread"] == 1
    assert hp["early_stopping_rounds"] is None
    assert validate(specs, hp) == hp  # idempotent
    flag = Hyperparameter("lowercase", "bool", True)
    assert [flag.convert(v) for v in ("false", "YES", "0", True)] == [False, True, False, True]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"num_rounds": "10"}, r"unknown hyperparameter 'num_rounds'; known: alpha, .*num_round"),
        ({"num_round": "0"}, r"'num_round' must be an integer in \[1, 10000\], got '0'"),
        ({"num_round": "2.5"}, r"'num_round' must be an integer in \[1, 10000\], got '2.5'"),
        ({"num_round": "many"}, r"'num_round' must be an integer"),
        ({"num_round": True}, r"'num_round' must be an integer"),
        ({"eta": "1.5"}, r"'eta' must be a number in \[0, 1\], got '1.5'"),
        ({"subsample": "0"}, r"'subsample' must be a number in \(0, 1\], got '0'"),
        ({"gamma": "-1"}, r"'gamma' must be a number in \[0, inf\), got '-1'"),
        ({"eta": "nan"}, r"'eta' must be a number in \[0, 1\]"),
        ({"objective": "reg:linear"}, r"'objective' must be one of binary:logistic, .*"),
    ],
)
def test_hyperparameter_errors_name_the_parameter_and_range(
    given: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate(ALGORITHMS["xgboost"].hyperparameters, given)


def test_hyperparameter_bool_error() -> None:
    with pytest.raises(InvalidInput, match=r"'lowercase' must be true or false, got 'maybe'"):
        validate(ALGORITHMS["text-classifier"].hyperparameters, {"lowercase": "maybe"})


def test_task_inference() -> None:
    assert infer_task(pd.Series([0, 1, 1, 0])) is Task.BINARY
    assert infer_task(pd.Series(["yes", "no"])) is Task.BINARY
    assert infer_task(pd.Series([True, False])) is Task.BINARY
    assert infer_task(pd.Series([0, 1, 2, 2])) is Task.MULTICLASS
    assert infer_task(pd.Series(["a", "b", "c"])) is Task.MULTICLASS
    assert infer_task(pd.Series([0.5, 1.25, 3.0])) is Task.REGRESSION
    assert infer_task(pd.Series([151.0, 75.0, 141.0, 206.0])) is Task.REGRESSION  # not 0..k-1


# --- xgboost ------------------------------------------------------------------------------------


def xgb_objective(booster: xgb.Booster) -> str:
    return str(json.loads(booster.save_config())["learner"]["objective"]["name"])


def test_xgboost_binary(cancer: Split) -> None:
    train, valid = cancer
    calls, progress = recorder()
    result = get_algorithm("xgboost").fit(train, valid, {"num_round": "25"}, progress)
    assert result.flavor == "xgboost" and isinstance(result.model, xgb.Booster)
    assert xgb_objective(result.model) == "binary:logistic"
    assert result.metrics["validation:auc"] > 0.9
    assert set(result.metrics) == {
        "train:auc",
        "train:logloss",
        "validation:auc",
        "validation:logloss",
    }
    assert [c[:2] for c in calls] == [(i, 25) for i in range(1, 26)]
    assert calls[-1][2] == result.metrics == result.history[-1]
    assert len(result.history) == result.rounds == 25
    assert result.classes == (0, 1)
    assert result.input_example.shape == (5, 30)
    predicted = result.model.predict(xgb.DMatrix(valid.features))
    assert predicted.shape == (len(valid),)
    assert ((predicted >= 0) & (predicted <= 1)).all()


def test_xgboost_multiclass_and_regression(iris: Split, diabetes: Split) -> None:
    algorithm = get_algorithm("xgboost")
    multi = algorithm.fit(*iris, {"num_round": "10"})
    assert xgb_objective(multi.model) == "multi:softprob"
    assert {"validation:mlogloss", "validation:merror"} <= set(multi.metrics)
    proba = multi.model.predict(xgb.DMatrix(iris[1].features))
    assert proba.shape == (len(iris[1]), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert multi.metrics["validation:merror"] < 0.15

    reg = algorithm.fit(*diabetes, {"num_round": "20", "eta": "0.1", "max_depth": "3"})
    assert xgb_objective(reg.model) == "reg:squarederror"
    assert set(reg.metrics) == {"train:rmse", "validation:rmse"}
    assert reg.metrics["validation:rmse"] < float(diabetes[1].target.std())
    assert reg.classes == ()


def test_xgboost_string_labels_are_encoded(cancer: Split) -> None:
    train, valid = cancer
    named = [
        Dataset(d.features, pd.Series(d.target).map({0: "malignant", 1: "benign"}), d.files)
        for d in (train, valid)
    ]
    result = get_algorithm("xgboost").fit(named[0], named[1], {"num_round": "10"})
    assert result.classes == ("benign", "malignant")
    assert result.metrics["validation:auc"] > 0.9


def test_xgboost_early_stopping(cancer: Split) -> None:
    hp = {"num_round": "400", "eta": "0.5", "early_stopping_rounds": "5"}
    result = get_algorithm("xgboost").fit(*cancer, hp)
    assert result.rounds is not None and result.rounds < 400
    assert result.model.num_boosted_rounds() == result.rounds
    assert len(result.history) == result.rounds + 5
    best = min(h["validation:logloss"] for h in result.history)
    assert result.metrics["validation:logloss"] == best
    with pytest.raises(InvalidInput, match=r"early_stopping_rounds needs a validation"):
        get_algorithm("xgboost").fit(cancer[0], None, hp)


def test_a_failing_progress_stops_training(cancer: Split) -> None:
    class Stop(Exception):
        pass

    seen: list[int] = []

    def progress(step: int, total: int, metrics: dict[str, float]) -> None:
        seen.append(step)
        if step == 3:
            raise Stop

    for name in ("xgboost", "lightgbm"):
        seen.clear()
        with pytest.raises(Stop):
            get_algorithm(name).fit(cancer[0], None, {"num_round": "50"}, progress)
        assert seen == [1, 2, 3]


def test_xgboost_refuses_bad_settings(cancer: Split, iris: Split) -> None:
    with pytest.raises(InvalidInput, match=r"num_class is 4 but the target has 3 classes"):
        get_algorithm("xgboost").fit(iris[0], None, {"num_round": "2", "num_class": "4"})
    with pytest.raises(InvalidInput, match=r"binary classifier needs exactly two classes"):
        get_algorithm("xgboost").fit(iris[0], None, {"objective": "binary:logistic"})
    with pytest.raises(InvalidInput, match=r"xgboost refused"):
        get_algorithm("xgboost").fit(cancer[0], None, {"num_round": "2", "eval_metric": "nope"})


# --- lightgbm -----------------------------------------------------------------------------------


def test_lightgbm_binary(cancer: Split) -> None:
    train, valid = cancer
    calls, progress = recorder()
    result = get_algorithm("lightgbm").fit(train, valid, {"num_round": "30"}, progress)
    assert result.flavor == "lightgbm" and isinstance(result.model, lgb.Booster)
    assert result.metrics["validation:auc"] > 0.9
    assert "validation:binary_logloss" in result.metrics
    assert "train:auc" in result.metrics
    assert [c[:2] for c in calls] == [(i, 30) for i in range(1, 31)]
    assert result.rounds == 30 and len(result.history) == 30
    predicted = result.model.predict(valid.features)
    assert predicted.shape == (len(valid),)
    assert ((predicted >= 0) & (predicted <= 1)).all()


def test_lightgbm_multiclass_regression_and_early_stopping(
    iris: Split, diabetes: Split, cancer: Split
) -> None:
    algorithm = get_algorithm("lightgbm")
    multi = algorithm.fit(*iris, {"num_round": "20", "min_data_in_leaf": "5"})
    assert multi.model.dump_model()["objective"].startswith("multiclass")
    assert multi.model.predict(iris[1].features).shape == (len(iris[1]), 3)
    assert multi.metrics["validation:multi_error"] < 0.15
    assert "validation:multi_logloss" in multi.metrics

    reg = algorithm.fit(*diabetes, {"num_round": "30", "learning_rate": "0.05"})
    assert reg.model.dump_model()["objective"].startswith("regression")
    assert set(reg.metrics) == {"train:rmse", "validation:rmse"}
    assert reg.metrics["validation:rmse"] < float(diabetes[1].target.std())

    stopped = algorithm.fit(
        *cancer, {"num_round": "500", "learning_rate": "0.5", "early_stopping_rounds": "5"}
    )
    assert stopped.rounds is not None and stopped.rounds < 500
    assert stopped.model.current_iteration() == stopped.rounds
    assert len(stopped.history) == stopped.rounds + 5


# --- scikit-learn algorithms -------------------------------------------------------------------


def test_linear_learner(cancer: Split, iris: Split, diabetes: Split) -> None:
    algorithm = get_algorithm("linear-learner")
    calls, progress = recorder()
    binary = algorithm.fit(*cancer, {}, progress)
    assert binary.flavor == "sklearn" and isinstance(binary.model, Pipeline)
    assert binary.metrics["validation:auc"] > 0.9
    assert binary.metrics["validation:accuracy"] > 0.9
    assert {"train:f1", "validation:f1"} <= set(binary.metrics)
    assert calls == [(1, 1, binary.metrics)]
    assert set(binary.model.predict(cancer[1].features)) <= {0, 1}
    assert binary.warnings == ()

    lasso = algorithm.fit(*cancer, {"penalty": "l1", "C": "0.5"})
    assert lasso.metrics["validation:auc"] > 0.9

    multi = algorithm.fit(*iris, {})
    assert multi.metrics["validation:accuracy"] > 0.8
    assert "validation:auc" not in multi.metrics

    reg = algorithm.fit(*diabetes, {"alpha": "1"})
    assert reg.metrics["validation:r2"] > 0.3
    assert {"validation:rmse", "validation:mae", "train:r2"} <= set(reg.metrics)


def test_kmeans(iris: Split) -> None:
    result = get_algorithm("kmeans").fit(iris[0], iris[1], {"k": "3"})
    assert result.flavor == "sklearn"
    assert 0 < result.metrics["train:msd"] < 1.0
    assert 0 < result.metrics["validation:msd"] < 1.5
    assert set(result.model.predict(iris[1].features)) == {0, 1, 2}
    with pytest.raises(InvalidInput, match=r"at least 500 training rows"):
        get_algorithm("kmeans").fit(iris[0], None, {"k": "500"})


def test_kmeans_needs_no_target(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(20.0), "y": np.arange(20.0) % 4})
    frame.to_csv(tmp_path / "points.csv", index=False)
    data = read_dataset(str(tmp_path / "points.csv"), require_target=False)
    result = get_algorithm("kmeans").fit(data, None, {"k": "2"})
    assert result.model.n_clusters == 2


def test_random_forest(cancer: Split, diabetes: Split) -> None:
    algorithm = get_algorithm("random-forest")
    forest = algorithm.fit(*cancer, {"n_estimators": "30", "max_depth": "6"})
    assert forest.flavor == "sklearn"
    assert forest.metrics["validation:auc"] > 0.9
    assert "sklearn.tree._tree.Tree" in forest.trusted_types
    loaded = sio.loads(sio.dumps(forest.model), trusted=list(forest.trusted_types))
    np.testing.assert_array_equal(
        loaded.predict(cancer[1].features), forest.model.predict(cancer[1].features)
    )
    reg = algorithm.fit(*diabetes, {"n_estimators": "30", "min_samples_leaf": "5"})
    assert reg.metrics["validation:r2"] > 0.2


def test_results_are_reproducible(cancer: Split) -> None:
    hp = {"n_estimators": "10", "max_features": "log2"}
    first = get_algorithm("random-forest").fit(*cancer, hp)
    second = get_algorithm("random-forest").fit(*cancer, hp)
    assert first.metrics == second.metrics
    one = get_algorithm("xgboost").fit(*cancer, {"num_round": "5", "subsample": "0.7"})
    two = get_algorithm("xgboost").fit(*cancer, {"num_round": "5", "subsample": "0.7"})
    assert one.history == two.history


# --- text classifier ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hp", "classes"),
    [
        ({}, ()),
        ({"vectorizer": "count", "ngram_max": "2", "min_df": "2"}, ()),
        ({"model": "xgboost", "num_round": "30"}, ("bad", "good")),
    ],
)
def test_text_classifier(corpus: Split, hp: dict[str, str], classes: tuple[str, ...]) -> None:
    train, valid = corpus
    result = get_algorithm("text-classifier").fit(train, valid, hp)
    assert result.flavor == "sklearn" and isinstance(result.model, Pipeline)
    assert result.metrics["validation:accuracy"] > 0.8
    assert {"validation:f1", "validation:auc", "train:accuracy"} <= set(result.metrics)
    assert result.classes == classes
    assert list(result.input_example.columns) == ["review"]
    sample = pd.DataFrame({"review": ["The meal was superb, really lovely.", "Awful, just poor."]})
    predicted = list(result.model.predict(sample))
    expected = ["good", "bad"] if not classes else [classes.index("good"), classes.index("bad")]
    assert predicted == expected
    loaded = sio.loads(sio.dumps(result.model), trusted=list(result.trusted_types))
    assert list(loaded.predict(sample)) == expected


def test_text_classifier_column_choice(corpus: Split) -> None:
    train, _ = corpus
    two = Dataset(train.features.assign(stars=1), train.target, train.files)
    with pytest.raises(InvalidInput, match=r"needs one text column.*review, stars.*text_column="):
        get_algorithm("text-classifier").fit(two, None, {})
    with pytest.raises(InvalidInput, match=r"'stars' holds numbers"):
        get_algorithm("text-classifier").fit(two, None, {"text_column": "stars"})
    with pytest.raises(InvalidInput, match=r"text_column 'body' is not in"):
        get_algorithm("text-classifier").fit(two, None, {"text_column": "body"})
    result = get_algorithm("text-classifier").fit(two, None, {"text_column": "review"})
    assert result.metrics["train:accuracy"] > 0.9


# --- refusals shared by the numeric algorithms ---------------------------------------------------


@pytest.mark.parametrize("name", NUMERIC)
def test_non_numeric_features_refused(name: str, cancer: Split) -> None:
    train = cancer[0]
    features = train.features.iloc[:, :3].assign(
        city="Paris", kind=pd.Categorical(["a"] * len(train))
    )
    with pytest.raises(InvalidInput, match=r"not numbers: city, kind"):
        get_algorithm(name).fit(Dataset(features, train.target, train.files), None, FAST[name])


@pytest.mark.parametrize("name", SUPERVISED_NUMERIC)
def test_single_class_target_refused(name: str, cancer: Split) -> None:
    train = cancer[0]
    one_class = Dataset(train.features, pd.Series(["yes"] * len(train), name="label"), train.files)
    with pytest.raises(InvalidInput, match=r"single class \('yes'\)"):
        get_algorithm(name).fit(one_class, None, FAST[name])


@pytest.mark.parametrize("name", SUPERVISED_NUMERIC)
def test_validation_columns_must_match(name: str, cancer: Split) -> None:
    train, valid = cancer
    fewer = Dataset(valid.features.drop(columns=["mean area"]), valid.target, valid.files)
    with pytest.raises(InvalidInput, match=r"feature columns differ.*missing: mean area"):
        get_algorithm(name).fit(train, fewer, FAST[name])


def test_missing_target_values_refused(cancer: Split) -> None:
    train = cancer[0]
    target = pd.Series(train.target, dtype="float64")
    target.iloc[3] = np.nan
    with pytest.raises(InvalidInput, match=r"train target 'label' has 1 missing value"):
        get_algorithm("xgboost").fit(Dataset(train.features, target, train.files), None, {})


@pytest.mark.parametrize("name", SUPERVISED_NUMERIC)
@pytest.mark.parametrize("channel", ["train", "validation"])
def test_infinite_target_values_refused(name: str, channel: str, diabetes: Split) -> None:
    # LightGBM trained on an infinite target and registered a model whose train:rmse was
    # 3.8e36; the others failed with their library's ValueError or XGBoost's check message.
    chosen = dict(zip(("train", "validation"), diabetes, strict=True))[channel]
    target = chosen.target.astype("float64").copy()
    target.iloc[[3, 7]] = [np.inf, -np.inf]
    chosen = Dataset(chosen.features, target, chosen.files)
    train, valid = (chosen, diabetes[1]) if channel == "train" else (diabetes[0], chosen)
    with pytest.raises(InvalidInput, match=rf"the {channel} target 'label' has 2 infinite value"):
        get_algorithm(name).fit(train, valid, FAST[name])


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("channel", ["train", "validation"])
def test_infinite_feature_values_refused(name: str, channel: str, diabetes: Split) -> None:
    # LightGBM trained on them; the others failed in their library's own words (XGBoost's
    # check message, scikit-learn's ValueError about float64), naming no column.
    chosen = dict(zip(("train", "validation"), diabetes, strict=True))[channel]
    features = chosen.features.copy()
    column = str(features.columns[2])
    features.iloc[[1, 4, 5], 2] = [np.inf, -np.inf, np.inf]
    chosen = Dataset(features, chosen.target, chosen.files)
    train, valid = (chosen, diabetes[1]) if channel == "train" else (diabetes[0], chosen)
    with pytest.raises(InvalidInput, match=rf"{channel} column {column!r} has 3 infinite value"):
        get_algorithm(name).fit(train, valid, FAST[name])


# --- what fit returns can be registered ----------------------------------------------------


@pytest.mark.parametrize("name", [*NUMERIC, "text-classifier"])
def test_trained_models_save_and_load_with_their_runtime(
    name: str, cancer: Split, corpus: Split, tmp_path: Path
) -> None:
    algorithm: Algorithm = get_algorithm(name)
    data = corpus if name == "text-classifier" else cancer
    result: TrainedModel = algorithm.fit(*data, FAST[name])
    runtime = get_runtime(result.flavor)
    saved = runtime.save(result.model, tmp_path, trust=Trust(types=result.trusted_types))
    loaded = runtime.load(tmp_path, saved)
    predicted = loaded.predict(result.input_example)
    assert len(predicted) == 5


def test_convergence_warnings_are_kept_not_raised(cancer: Split) -> None:
    result = get_algorithm("linear-learner").fit(*cancer, {"max_iter": "2"})
    assert result.warnings and "converge" in result.warnings[0].lower()
    assert result.metrics["validation:accuracy"] > 0.5
    points = Dataset(pd.DataFrame({"x": [1.0, 1.0, 1.0, 2.0]}), None, ("p",))
    clusters = get_algorithm("kmeans").fit(points, None, {"k": "3"})
    assert clusters.warnings and "distinct clusters" in clusters.warnings[0]
