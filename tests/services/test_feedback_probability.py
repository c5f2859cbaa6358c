"""Quality of a real XGBoost ``binary:logistic`` model that outputs one probability column,
registered by hand as the demo does (metric names, no recorded classes): its captured
probability is read as the probability of class 1, so the metrics are scikit-learn's on
``p >= 0.5`` and ROC AUC is scored from ``p`` (it was once compared with the label as if it
were one: accuracy 0.0, DEGRADED, no ROC AUC)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from modelyard.bootstrap import Platform, build, serving_app
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig
from modelyard.domain.quality import QualityStatus, Task
from modelyard.errors import InvalidInput
from modelyard.monitoring.model_task import ModelTask, model_task
from tests.serving.asgi_support import lifespan


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, breast_cancer: Any
) -> tuple[Platform, Any, pd.DataFrame, pd.Series]:
    """``cancer:1``, an XGBClassifier(binary:logistic) registered with its validation AUC and
    accuracy, served at ``api`` capturing every request."""
    import xgboost as xgb

    x_train, x_test, y_train, y_test = breast_cancer
    home = tmp_path_factory.mktemp("feedback-probability") / "home"
    made = build(load_settings({}, home=home, capture_roll_s=3600, metrics=False))
    model = xgb.XGBClassifier(
        objective="binary:logistic", n_estimators=20, max_depth=3, n_jobs=1, random_state=0
    ).fit(x_train, y_train)
    p = model.predict_proba(x_test)[:, 1]
    metrics = {
        "auc": float(roc_auc_score(y_test, p)),
        "accuracy": float(accuracy_score(y_test, p >= 0.5)),
    }
    made.registry.register(
        "cancer", model, flavor="xgboost", input_example=x_test[:5], metrics=metrics
    )
    made.endpoints.create("api", {"main": "cancer:1"}, capture={"main": CaptureConfig.parse(100)})
    return made, model, x_test, y_test


def _invoke(made: Platform, rows: list[list[float]]) -> tuple[str, list[float]]:
    """``rows`` sent to endpoint ``api`` through the serving app; the inference id and the
    predictions (the app's shutdown writes the captured rows)."""

    async def scenario() -> tuple[str, list[float]]:
        async with lifespan(serving_app(made.settings)) as client:
            answer = await client.post("/endpoints/api/invocations", json=rows)
            assert answer.status_code == 200, answer.text
            return answer.headers["x-modelyard-inference-id"], answer.json()["predictions"]

    return asyncio.run(scenario())


def test_one_probability_column_is_scored_as_the_positive_class(
    platform: tuple[Platform, Any, pd.DataFrame, pd.Series],
) -> None:
    made, _, x_test, y_test = platform
    rows = x_test.to_numpy().tolist()

    started = datetime.now(UTC)
    inference_id, served = _invoke(made, rows)
    p = np.asarray(served, dtype="float64")
    assert p.shape == (len(rows),) and ((p > 0) & (p < 1)).all()  # probabilities, not labels
    labels = [int(v) for v in y_test]
    items = [{"inference_id": inference_id, "row": i, "label": v} for i, v in enumerate(labels)]
    assert made.feedback.record("api", items).accepted == len(rows)

    (point,) = made.feedback.quality("api", window=datetime.now(UTC) - started)
    predicted = (p >= 0.5).astype(int)
    assert point.task is Task.CLASSIFICATION and point.rows == len(rows)
    assert point.metrics["accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert point.metrics["precision"] == pytest.approx(precision_score(labels, predicted))
    assert point.metrics["recall"] == pytest.approx(recall_score(labels, predicted))
    assert point.metrics["f1"] == pytest.approx(f1_score(labels, predicted))
    assert point.metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, p))
    assert point.metrics["accuracy"] > 0.9  # a real model on held-out rows
    assert point.status is QualityStatus.OK  # the same rows as its validation metrics


def test_a_booster_whose_params_name_binary_logistic_has_classes_0_and_1(
    platform: tuple[Platform, Any, pd.DataFrame, pd.Series],
) -> None:
    made, model, x_test, _ = platform
    booster = model.get_booster()
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    version = made.registry.register(
        "booster",
        booster,
        flavor="xgboost",
        input_example=x_test[:5],
        params={"objective": objective},
    )
    assert model_task(version) == ModelTask(Task.CLASSIFICATION, ("0", "1"), "f", 1)
    # Without the objective nor metric names, one float column is a regressor's.
    plain = made.registry.register("plain", booster, flavor="xgboost", input_example=x_test[:5])
    assert model_task(plain).task is Task.REGRESSION


def test_a_label_that_is_not_class_0_or_1_is_refused_and_nothing_is_stored(
    platform: tuple[Platform, Any, pd.DataFrame, pd.Series],
) -> None:
    """The probability column is read as classes 0 and 1 by quality, so the labels of such
    a model are checked against those classes when they arrive: a label ``"cat"`` or ``7``
    was once accepted, replacing a real label, and then silently left out of the scores."""
    made, _, x_test, _ = platform
    rows = x_test.to_numpy()[:4].tolist()

    async def scenario() -> str:
        async with lifespan(serving_app(made.settings)) as client:
            answer = await client.post("/endpoints/api/invocations", json=rows)
            assert answer.status_code == 200, answer.text
            return answer.headers["x-modelyard-inference-id"]

    started = datetime.now(UTC)
    inference_id = asyncio.run(scenario())  # the shutdown wrote the captured rows
    items = [
        {"inference_id": inference_id, "row": 0, "label": 1},
        {"inference_id": inference_id, "row": 1, "label": "cat"},
        {"inference_id": inference_id, "row": 2, "label": 7},
        {"inference_id": inference_id, "row": 3, "label": 0.5},
    ]
    with pytest.raises(InvalidInput, match="not one of the classes") as refused:
        made.feedback.record("api", items)
    message = str(refused.value)
    assert all(f"row {r}" in message for r in (1, 2, 3)) and "row 0" not in message
    (point,) = made.feedback.quality("api", window=datetime.now(UTC) - started)
    assert point.rows == 0 and point.status is QualityStatus.INSUFFICIENT_DATA  # nothing stored
    # The classes' own names, as numbers, strings or floats, are taken.
    good = [
        {"inference_id": inference_id, "row": r, "label": v} for r, v in enumerate([1, "0", 1.0, 0])
    ]
    assert made.feedback.record("api", good).accepted == 4


def test_true_and_false_label_classes_1_and_0_whatever_else_the_window_holds(
    platform: tuple[Platform, Any, pd.DataFrame, pd.Series],
) -> None:
    """A batch of booleans was accepted for the probability of class 1 (read as classes
    False/True, since all its labels were booleans), but quality read the window's labels
    together: beside 0/1 labels those were no class, and were left out of the scores as
    'labelled rows whose prediction could not be read'. True and false now name 1 and 0."""
    made, _, x_test, y_test = platform
    rows = x_test.to_numpy()[:40].tolist()

    started = datetime.now(UTC)
    inference_id, served = _invoke(made, rows)
    labels = [int(v) for v in y_test[:40]]
    as_bools = [
        {"inference_id": inference_id, "row": r, "label": bool(v)}
        for r, v in enumerate(labels[:20])
    ]
    as_ints = [
        {"inference_id": inference_id, "row": r, "label": v}
        for r, v in enumerate(labels[20:], start=20)
    ]
    assert made.feedback.record("api", as_bools).accepted == 20
    assert made.feedback.record("api", as_ints).accepted == 20

    (point,) = made.feedback.quality("api", window=datetime.now(UTC) - started)
    assert point.rows == 40, point.notes
    assert not any("could not be read" in n for n in point.notes), point.notes
    predicted = (np.asarray(served) >= 0.5).astype(int)
    assert point.metrics["accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert point.metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, served))
    # Booleans still name no other class: a string "True" is not class 1.
    with pytest.raises(InvalidInput, match="not one of the classes"):
        made.feedback.record("api", [{"inference_id": inference_id, "row": 0, "label": "True"}])
