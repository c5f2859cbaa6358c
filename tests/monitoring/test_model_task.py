"""What a model version predicts, read from what the registry keeps of real registered models,
and which labels fit it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain.quality import Task
from modelyard.monitoring.model_task import (
    ModelTask,
    check_label,
    class_key,
    match_class,
    model_task,
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    made = build(load_settings({}, home=tmp_path_factory.mktemp("tasks") / "home"))
    rng = np.random.default_rng(2)
    x = pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"])
    made.registry.register(
        "ints",
        LogisticRegression().fit(x, (x["a"] > 0).astype(int)),
        flavor="sklearn",
        input_example=x[:3],
    )
    words = np.where(x["a"] > 0, "yes", "no")
    made.registry.register(
        "words", LogisticRegression().fit(x, words), flavor="sklearn", input_example=x[:3]
    )
    made.registry.register(
        "floats", LinearRegression().fit(x, x["a"] * 2), flavor="sklearn", input_example=x[:3]
    )
    halves = np.where(x["a"] > 0, 1.0, 0.0)  # float classes: its outputs are labels still
    made.registry.register(
        "halves", LogisticRegression().fit(x, halves), flavor="sklearn", input_example=x[:3]
    )
    made.registry.register(
        "encoded",
        LinearRegression().fit(x, x["a"]),  # its outputs stand for classes, as the params say
        flavor="sklearn",
        input_example=x[:3],
        params={"classes": json.dumps(["low", "high"])},
    )
    made.registry.register(
        "named",
        LinearRegression().fit(x, x["a"]),
        flavor="sklearn",
        input_example=x[:3],
        metrics={"validation:rmse": 0.1},
    )
    return made


def test_the_task_comes_from_classes_metrics_or_output_type(platform: Platform) -> None:
    def task(ref: str) -> ModelTask:
        return model_task(platform.registry.get_version(ref))

    # A scikit-learn classifier's classes are recorded at registration: the labels it answers.
    assert task("ints:1") == ModelTask(Task.CLASSIFICATION, None, "i", 1, ("0", "1"))
    assert task("words:1") == ModelTask(Task.CLASSIFICATION, None, "O", 1, ("no", "yes"))
    assert task("halves:1") == ModelTask(Task.CLASSIFICATION, None, "f", 1, ("0", "1"))
    assert task("floats:1") == ModelTask(Task.REGRESSION, None, "f", 1)
    assert task("encoded:1") == ModelTask(Task.CLASSIFICATION, ("low", "high"), "f", 1)
    assert task("named:1").task is Task.REGRESSION


def test_labels_that_fit_and_labels_that_do_not(platform: Platform) -> None:
    def why(ref: str, label: Any) -> str | None:
        return check_label(model_task(platform.registry.get_version(ref)), label, ref)

    assert why("ints:1", 1) is None and why("ints:1", 0.0) is None and why("ints:1", "1") is None
    for label in ("yes", 0.5, True):
        assert "not one of the classes of ints:1: ['0', '1']" in (why("ints:1", label) or "")
    assert why("words:1", "yes") is None
    # Labels the classifier can never answer would skew its quality: refused.
    assert "not one of the classes of words:1: ['no', 'yes']" in (why("words:1", "maybe") or "")
    assert "not one of the classes of words:1" in (why("words:1", 1) or "")
    assert "not one of the classes of ints:1" in (why("ints:1", 2) or "")
    assert why("halves:1", 0.0) is None and why("halves:1", 1) is None
    assert "not one of the classes of halves:1" in (why("halves:1", 0.75) or "")
    assert why("floats:1", 2.5) is None and why("floats:1", 3) is None
    assert "regressor and takes a number" in (why("floats:1", "2.5") or "")
    assert "regressor and takes a number" in (why("floats:1", False) or "")
    assert why("encoded:1", "high") is None
    assert "not one of the classes of encoded:1: ['low', 'high']" in (why("encoded:1", "mid") or "")
    assert (why("encoded:1", 2) or "").startswith("an int (2) is not one of the classes")


def test_classes_compare_by_text_then_number() -> None:
    assert [class_key(v) for v in (1, 1.0, "1", True, 2.5, np.int64(3))] == [
        "1",
        "1",
        "1",
        "True",
        "2.5",
        "3",
    ]
    classes = ("0.0", "1.0")
    assert match_class(1, classes) == "1.0" and match_class("0", classes) == "0.0"
    assert match_class(True, classes) is None and match_class(2, classes) is None
    assert match_class("True", ("False", "True")) == "True"
