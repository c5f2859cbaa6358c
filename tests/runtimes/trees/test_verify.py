"""The verification rows and the agreement rule: deterministic, within the features' ranges,
and the rule as documented (1e-6 * max(1, |native|); classes exactly; NaN equals NaN)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import tree

from modelyard.monitoring.profile import Profile
from modelyard.runtimes.sklearn_runtime import SklearnLoaded
from modelyard.runtimes.trees import choose, converters, verify
from modelyard.runtimes.trees.verify import SAMPLE_ROWS, Verdict, compare, verification_rows
from tests.runtimes.trees._models import (
    FEATURES,
    Data,
    assert_agrees,
    fresh_rows,
    sha256,
    training_data,
    xgb_model,
)

DATA: Data = training_data()
NAMES = [f"f{j}" for j in range(FEATURES)]


@pytest.fixture(scope="module")
def graph() -> bytes:
    return converters.xgboost(xgb_model(DATA, "binary:logistic", rounds=10))


def test_same_inputs_same_rows(graph: bytes) -> None:
    baseline = Profile.from_frame(pd.DataFrame(DATA.x, columns=NAMES)).summary()
    example = DATA.x[:5]
    first = verification_rows(graph, FEATURES, example, baseline, NAMES, seed=7)
    second = verification_rows(graph, FEATURES, example, baseline, NAMES, seed=7)
    assert first.dtype == np.float64 and first.shape[1] == FEATURES
    assert np.array_equal(first, second, equal_nan=True)
    other = verification_rows(graph, FEATURES, example, baseline, NAMES, seed=8)
    assert not np.array_equal(first, other, equal_nan=True)


def test_rows_start_with_the_example_then_sample_the_baseline_range(graph: bytes) -> None:
    frame = pd.DataFrame(DATA.x, columns=NAMES)
    baseline = Profile.from_frame(frame).summary()
    example = DATA.x[:5]
    rows = verification_rows(graph, FEATURES, example, baseline, NAMES, seed=1)
    assert np.array_equal(rows[:5], example, equal_nan=True)
    sample = rows[5 : 5 + SAMPLE_ROWS]
    thresholds = {(s.feature, s.threshold) for s in verify.splits(graph)}
    for j, name in enumerate(NAMES):
        low, high = baseline["features"][name]["min"], baseline["features"][name]["max"]
        column = sample[:, j]
        inside = (column >= low) & (column <= high)
        snapped = np.array([(j, float(v)) in thresholds for v in column])
        assert np.all(inside | snapped | np.isnan(column)), name
        assert 0 < np.isnan(column).sum() < SAMPLE_ROWS / 5  # some missing, as the model takes
    without = verification_rows(graph, FEATURES, None, baseline, NAMES, allow_missing=False)
    assert not np.isnan(without).any()


def test_every_split_is_probed_at_its_threshold_and_both_neighbours(graph: bytes) -> None:
    rows = verification_rows(graph, FEATURES, None, seed=2)
    for split in verify.splits(graph):
        values = set(rows[:, split.feature].tolist())
        t = split.threshold
        for v in (t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)):
            assert float(v) in values, (split.feature, t)


@pytest.fixture(scope="module")
def missing_only_split() -> SklearnLoaded:
    """A tree that splits off the missing values of feature 0 (only they go right: scikit-learn
    writes the threshold as +inf) and splits them again on feature 1."""
    rng = np.random.default_rng(41)
    x = rng.normal(size=(400, 3))
    missing = rng.random(400) < 0.3
    x[missing, 0] = np.nan
    y = np.where(missing, 2 + (x[:, 1] > 0), x[:, 2] > 0).astype(np.int64)
    estimator = tree.DecisionTreeClassifier(max_depth=4, random_state=0).fit(x, y)
    t = estimator.tree_
    below = [t.children_right[i] for i in range(t.node_count) if np.isposinf(t.threshold[i])]
    assert any(t.children_left[k] >= 0 for k in below)  # a split below a missing-only split
    return SklearnLoaded(estimator)


def test_rows_hold_no_infinity(missing_only_split: SklearnLoaded) -> None:
    """The rows below a missing-only split can only be reached with a missing value; an
    infinite value there is outside every feature's range, and scikit-learn refuses it."""
    graph = converters.sklearn(missing_only_split)
    rows = verification_rows(graph, 3, None, allow_missing=True)
    assert not np.isinf(rows).any(), f"{np.isinf(rows).any(axis=1).sum()} rows hold +-inf"


def test_model_with_a_missing_only_split_compiles(missing_only_split: SklearnLoaded) -> None:
    choice = choose(missing_only_split, "sklearn")
    assert choice.kind == "compiled", choice.reason
    rows = fresh_rows(DATA.x[:, :3], 2000, seed=42, missing=True)
    assert_agrees(missing_only_split.predict(rows), choice.model.predict(rows), classes=True)


def test_choose_twice_gives_the_same_verdict() -> None:
    digest = sha256(b"the package")
    example = DATA.x[:3]
    first = choose(xgb_model(DATA, "reg:squarederror"), "xgboost", example=example, names=NAMES)
    second = choose(xgb_model(DATA, "reg:squarederror"), "xgboost", example=example, names=NAMES)
    assert first.reason == second.reason
    # the seed comes from the digest: without a store, the same digest verifies the same rows
    third = choose(xgb_model(DATA, "reg:squarederror"), "xgboost", digest=digest)
    fourth = choose(xgb_model(DATA, "reg:squarederror"), "xgboost", digest=digest)
    assert third.reason == fourth.reason
    report = first.to_dict()
    assert set(report) == {"kind", "reason", "row_us", "native_row_us", "prepare_s", "cached"}
    assert report["kind"] == first.kind and report["reason"] == first.reason


# --- the agreement rule ---------------------------------------------------------------------


def test_tolerance_is_absolute_below_one_and_relative_above() -> None:
    native = np.array([0.5, 0.5, 1000.0, 1000.0, -1000.0])
    compiled = np.array([0.5 + 0.9e-6, 0.5 + 1.1e-6, 1000.0009, 1000.0011, -1000.0009])
    verdict = compare(native, compiled, classes=False)
    assert verdict == Verdict(rows=5, differing=2, max_diff=pytest.approx(1.1e-3), classes=False)
    assert verdict.describe() == "2 of 5 predictions differ by up to 0.001"


def test_missing_answers_agree_with_missing() -> None:
    assert compare(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), classes=False).equal


def test_missing_against_a_number_differs_by_infinity() -> None:
    """Only NaN-against-number differences: counted, reported as inf, and no warning (the
    test suite turns warnings into errors, as a server's logs would fill with them)."""
    one_side = compare(np.array([np.nan, 1.0, 2.0]), np.array([0.0, np.nan, 2.0]), classes=False)
    assert (one_side.differing, one_side.max_diff) == (2, float("inf"))


def test_classes_must_be_exactly_equal() -> None:
    verdict = compare(np.array([1, 2, 3]), np.array([1, 2, 4]), classes=True)
    assert (verdict.differing, verdict.describe()) == (1, "1 of 3 predicted classes differ")
    labels = compare(np.array(["a", "b"]), np.array(["a", "b"]), classes=False)
    assert labels.equal and labels.describe() == "2 predictions agree"


def test_multi_output_rows_count_once_and_shapes_must_match() -> None:
    native = np.zeros((4, 3))
    compiled = native.copy()
    compiled[1, :] = 0.1
    compiled[2, 2] = 0.1
    assert compare(native, compiled, classes=False).differing == 2
    narrower = compare(native, native[:, :2], classes=False)
    assert (narrower.differing, narrower.max_diff) == (4, float("inf"))
