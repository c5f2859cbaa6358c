"""Model quality on labelled predictions of real fitted models: a label flip after time T shows
as a degraded window after T and not before; the metrics are scikit-learn's on the same rows;
probabilities give ROC AUC, labels alone do not; a window without labels has no values and
is INSUFFICIENT_DATA, never OK; regressors get RMSE and MAE."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    precision_score,
    recall_score,
    roc_auc_score,
)

from modelyard.domain.quality import QualityConfig, QualityStatus, Task
from modelyard.monitoring.model_quality import ModelInfo, quality_points, window_starts
from modelyard.monitoring.model_task import ModelTask

T = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def hours(count: int, start: datetime = T - HOUR) -> list[tuple[datetime, datetime]]:
    return [(s, s + HOUR) for s in window_starts(start, start + count * HOUR, HOUR)]


@pytest.fixture(scope="module")
def classifier(breast_cancer: Any) -> tuple[Any, pd.DataFrame, pd.Series]:
    x_train, x_test, y_train, y_test = breast_cancer
    model = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    return model, x_test, y_test


def frame_of(
    served_at: list[datetime], labels: list[Any], predictions: list[Any], model: str = "churn:3"
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "served_at": pd.to_datetime(served_at, utc=True),
            "variant": "main",
            "model": model,
            "label": pd.Series(labels, dtype="object"),
            "prediction": pd.Series(predictions, dtype="object"),
        }
    )


def spread(count: int, start: datetime) -> list[datetime]:
    """``count`` times spread over the hour from ``start``."""
    return [start + timedelta(seconds=3590 * i / max(count - 1, 1)) for i in range(count)]


def test_a_label_flip_after_t_degrades_the_windows_after_t_only(classifier: Any) -> None:
    model, x_test, y_test = classifier
    probabilities = model.predict_proba(x_test).tolist()  # captured as output.0, output.1
    truth = [int(v) for v in y_test]
    validation = {"validation:accuracy": 0.95, "validation:f1": 0.96, "validation:auc": 0.99}
    info = ModelInfo(ModelTask(Task.CLASSIFICATION, ("0", "1"), "f", 2), validation)
    flipped = [1 - v for v in truth]  # the concept changed at T
    frame = pd.concat(
        [
            frame_of(spread(len(truth), T - HOUR), truth, probabilities),
            frame_of(spread(len(truth), T), flipped, probabilities),
        ]
    )
    before, after = quality_points(
        frame, endpoint="churn-api", windows=hours(2), models={"churn:3": info}
    )
    assert (before.start, after.start) == (T - HOUR, T)
    assert before.status is QualityStatus.OK, before
    assert after.status is QualityStatus.DEGRADED, after
    assert set(after.degraded) == {"accuracy", "f1", "roc_auc"}
    assert before.rows == after.rows == len(truth)

    predicted = model.predict(x_test)
    assert before.metrics["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert before.metrics["precision"] == pytest.approx(precision_score(truth, predicted))
    assert before.metrics["recall"] == pytest.approx(recall_score(truth, predicted))
    assert before.metrics["f1"] == pytest.approx(f1_score(truth, predicted))
    assert before.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(truth, model.predict_proba(x_test)[:, 1])
    )
    assert after.metrics["accuracy"] == pytest.approx(1 - before.metrics["accuracy"])  # type: ignore[operator]
    accuracy = next(c for c in after.comparisons if c.name == "accuracy")
    assert accuracy.baseline == 0.95
    assert accuracy.relative_change == pytest.approx((0.95 - after.metrics["accuracy"]) / 0.95)  # type: ignore[operator]
    assert after.scores()["quality.accuracy"] == after.metrics["accuracy"]


def test_labels_alone_give_no_roc_auc_and_one_probability_column_does(classifier: Any) -> None:
    model, x_test, y_test = classifier
    truth = [int(v) for v in y_test]
    times = spread(len(truth), T)
    labels_only = quality_points(
        frame_of(times, truth, [int(v) for v in model.predict(x_test)]),
        endpoint="e",
        windows=hours(1, T),
        models={"churn:3": ModelInfo(ModelTask(Task.CLASSIFICATION, None, "i", 1))},
    )[0]
    assert labels_only.metrics["roc_auc"] is None
    assert labels_only.metrics["accuracy"] == pytest.approx(
        accuracy_score(truth, model.predict(x_test))
    )
    assert "roc_auc needs captured class probabilities" in labels_only.notes
    assert labels_only.status is QualityStatus.NO_BASELINE

    # A binary booster's one column: the probability of classes[1]; labels sent as text.
    positive = model.predict_proba(x_test)[:, 1].tolist()
    booster = quality_points(
        frame_of(times, [str(v) for v in truth], positive),
        endpoint="e",
        windows=hours(1, T),
        models={"churn:3": ModelInfo(ModelTask(Task.CLASSIFICATION, ("0", "1"), "f", 1))},
    )[0]
    assert booster.metrics["roc_auc"] == pytest.approx(roc_auc_score(truth, positive))
    assert booster.metrics["accuracy"] == labels_only.metrics["accuracy"]


def test_a_window_without_labels_is_insufficient_data_with_no_values(classifier: Any) -> None:
    model, x_test, y_test = classifier
    truth = [int(v) for v in y_test][:10]
    info = ModelInfo(
        ModelTask(Task.CLASSIFICATION, ("0", "1"), "f", 2), {"validation:accuracy": 0.9}
    )
    wrong = [1 - v for v in truth]
    frame = frame_of(spread(10, T), wrong, model.predict_proba(x_test[:10]).tolist())
    empty, few = quality_points(
        frame,
        endpoint="e",
        windows=hours(2),
        models={"churn:3": info},
        expected=[("main", "churn:3")],
        config=QualityConfig(min_rows=30),
    )
    assert empty.rows == 0 and empty.status is QualityStatus.INSUFFICIENT_DATA
    assert all(v is None for v in empty.metrics.values())
    assert empty.comparisons == () and empty.scores() == {"quality.rows": 0.0}
    # Ten labels, all wrong: values shown and compared, but no verdict either way.
    assert few.rows == 10 and few.status is QualityStatus.INSUFFICIENT_DATA
    assert few.metrics["accuracy"] is not None
    assert [c.name for c in few.comparisons] == ["accuracy"] and few.degraded == []


def test_a_regressor_gets_rmse_and_mae_and_a_shift_degrades_them() -> None:
    features, target = load_diabetes(return_X_y=True)
    model = Ridge(alpha=0.1).fit(features[:300], target[:300])
    predicted = model.predict(features[300:]).tolist()
    truth = target[300:].tolist()
    rmse = math.sqrt(float(np.mean((np.asarray(predicted) - np.asarray(truth)) ** 2)))
    info = ModelInfo(ModelTask(Task.REGRESSION, None, "f", 1), {"validation:rmse": rmse * 1.02})
    shifted = [v + 60 for v in truth]
    frame = pd.concat(
        [
            frame_of(spread(len(truth), T - HOUR), truth, predicted),
            frame_of(spread(len(truth), T), shifted, predicted),
        ]
    )
    before, after = quality_points(frame, endpoint="e", windows=hours(2), models={"churn:3": info})
    assert before.task is Task.REGRESSION
    assert before.metrics["rmse"] == pytest.approx(rmse)
    assert before.metrics["mae"] == pytest.approx(mean_absolute_error(truth, predicted))
    assert before.status is QualityStatus.OK
    assert after.status is QualityStatus.DEGRADED and after.degraded == ["rmse"]
    assert after.metrics["rmse"] > 1.2 * rmse  # type: ignore[operator]


def test_labels_far_off_give_their_true_errors_and_too_far_an_infinite_one() -> None:
    """Errors are scaled before squaring: 1e200 off is an RMSE of ~1e200, not infinity (which
    is no JSON number); an error beyond what a float holds is infinite: degraded."""
    info = ModelInfo(ModelTask(Task.REGRESSION, None, "f", 1), {"validation:rmse": 1.0})
    for truth, predicted, rmse, mae in (
        ([1e200, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], 5e199, 2.5e199),
        ([1.0, 2.0], [1.0, 2.0], 0.0, 0.0),
        ([-1e308, 3.0], [0.0, 3.0], 1e308 / math.sqrt(2), 5e307),
    ):
        (point,) = quality_points(
            frame_of(spread(len(truth), T), truth, predicted),
            endpoint="e", windows=hours(1, T), models={"churn:3": info},
        )  # fmt: skip
        assert point.metrics["rmse"] == pytest.approx(rmse)
        assert point.metrics["mae"] == pytest.approx(mae)
    (beyond,) = quality_points(
        frame_of(spread(30, T), [-1.7e308] * 15 + [1.0] * 15, [1.7e308] * 15 + [1.0] * 15),
        endpoint="e", windows=hours(1, T), models={"churn:3": info},
    )  # fmt: skip
    assert beyond.metrics["rmse"] == beyond.metrics["mae"] == math.inf
    assert beyond.status is QualityStatus.DEGRADED  # against the validation RMSE of 1


def test_variants_and_models_are_scored_apart(classifier: Any) -> None:
    model, x_test, y_test = classifier
    truth = [int(v) for v in y_test]
    labels = [int(v) for v in model.predict(x_test)]
    info = ModelInfo(ModelTask(Task.CLASSIFICATION, None, "i", 1))
    blue = frame_of(spread(len(truth), T), truth, labels, model="churn:3")
    green = frame_of(spread(len(truth), T), [1 - v for v in truth], labels, model="churn:4")
    green["variant"] = "green"
    points = quality_points(
        pd.concat([green, blue]),
        endpoint="e",
        windows=hours(1, T),
        models={"churn:3": info, "churn:4": info},
    )
    assert [(p.variant, p.model) for p in points] == [("green", "churn:4"), ("main", "churn:3")]
    assert points[0].metrics["accuracy"] == pytest.approx(1 - points[1].metrics["accuracy"])  # type: ignore[operator]


def test_a_point_round_trips_through_json(classifier: Any) -> None:
    model, x_test, y_test = classifier
    truth = [int(v) for v in y_test]
    frame = frame_of(spread(len(truth), T), truth, model.predict_proba(x_test).tolist())
    info = ModelInfo(ModelTask(Task.CLASSIFICATION, ("0", "1"), "f", 2), {"validation:auc": 1.0})
    (point,) = quality_points(frame, endpoint="e", windows=hours(1, T), models={"churn:3": info})
    import json

    from modelyard.domain.quality import QualityPoint

    assert QualityPoint.from_dict(json.loads(json.dumps(point.to_dict()))) == point


def test_a_window_that_cannot_measure_the_validated_metric_is_insufficient_data(
    classifier: Any,
) -> None:
    """A binary booster validated on AUC alone, labelled with one class only in a window: ROC
    AUC is undefined there, so nothing can be compared. The window once read ``no_baseline``
    (as if the version had no validation metric), which it has."""
    model, x_test, _ = classifier
    positive = model.predict_proba(x_test)[:, 1].tolist()
    info = ModelInfo(ModelTask(Task.CLASSIFICATION, ("0", "1"), "f", 1), {"validation:auc": 0.97})
    (point,) = quality_points(
        frame_of(spread(len(positive), T), [1] * len(positive), positive),
        endpoint="e",
        windows=hours(1, T),
        models={"churn:3": info},
    )
    assert point.rows == len(positive) and point.metrics["roc_auc"] is None
    assert point.comparisons == ()
    assert point.status is QualityStatus.INSUFFICIENT_DATA
    assert "roc_auc needs labels of both classes" in point.notes
    assert any("roc_auc" in n and "validation" in n for n in point.notes), point.notes

    # Without any validation metric the window still reads no_baseline.
    (bare,) = quality_points(
        frame_of(spread(len(positive), T), [1] * len(positive), positive),
        endpoint="e",
        windows=hours(1, T),
        models={"churn:3": ModelInfo(info.task)},
    )
    assert bare.status is QualityStatus.NO_BASELINE


def test_a_window_without_the_positive_class_does_not_read_as_zero_precision_recall_f1(
    classifier: Any,
) -> None:
    """A quiet hour whose labels are all negative, every one predicted right: precision,
    recall and F1 of the positive class are undefined (no positive predicted, none labelled),
    and were reported as 0.0, so the window read DEGRADED at accuracy 1.0, a false alarm.
    They are now unmeasured (None, with a note); the metrics that are defined judge it."""
    model, x_test, y_test = classifier
    predicted = model.predict(x_test)
    right = [i for i, (p, y) in enumerate(zip(predicted, y_test, strict=True)) if p == y == 0]
    assert len(right) >= 30
    validation = {
        "validation:accuracy": 0.95,
        "validation:precision": 0.95,
        "validation:recall": 0.95,
        "validation:f1": 0.95,
    }
    info = ModelInfo(ModelTask(Task.CLASSIFICATION, None, "i", 1), validation)
    (quiet,) = quality_points(
        frame_of(
            spread(len(right), T),
            [int(y_test.iloc[i]) for i in right],
            [int(predicted[i]) for i in right],
        ),
        endpoint="e",
        windows=hours(1, T),
        models={"churn:3": info},
    )
    assert quiet.metrics["accuracy"] == 1.0
    assert quiet.metrics["precision"] is None
    assert quiet.metrics["recall"] is None and quiet.metrics["f1"] is None
    assert quiet.status is QualityStatus.OK, quiet
    assert [c.name for c in quiet.comparisons] == ["accuracy"]
    assert any("precision" in n and "positive" in n for n in quiet.notes), quiet.notes
    assert any("recall" in n and "f1" in n for n in quiet.notes), quiet.notes

    # Positives labelled but none predicted: recall and F1 are a true 0 and degrade it.
    (missed,) = quality_points(
        frame_of(spread(40, T), [1] * 10 + [0] * 30, [0] * 40),
        endpoint="e",
        windows=hours(1, T),
        models={"churn:3": info},
    )
    assert missed.metrics["recall"] == 0.0 and missed.metrics["f1"] == 0.0
    assert missed.metrics["precision"] is None
    assert missed.status is QualityStatus.DEGRADED
    assert {"recall", "f1"} <= set(missed.degraded)

    # Positives predicted but none labelled (pure false positives): F1 is a true 0 too.
    (false_alarms,) = quality_points(
        frame_of(spread(40, T), [0] * 40, [1] * 10 + [0] * 30),
        endpoint="e",
        windows=hours(1, T),
        models={"churn:3": info},
    )
    assert false_alarms.metrics["recall"] is None
    assert false_alarms.metrics["f1"] == 0.0 and false_alarms.metrics["precision"] == 0.0
    assert {"precision", "f1"} <= set(false_alarms.degraded)
