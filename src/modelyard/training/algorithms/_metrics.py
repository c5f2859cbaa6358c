"""Metrics of fitted scikit-learn-style estimators, named like SageMaker's (``validation:auc``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from modelyard.training.algorithms._prepare import Task

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def evaluate(
    estimator: Any, task: Task, channel: str, features: pd.DataFrame, target: Any
) -> dict[str, float]:
    """``{channel}:accuracy``, ``:f1`` and (binary) ``:auc`` for a classifier;
    ``{channel}:rmse``, ``:mae`` and ``:r2`` for a regressor.

    ``target`` must be labelled the way the estimator was fitted. Metrics that are undefined
    on this data (AUC with one class present, R² of one row) are left out.
    """
    import numpy as np

    predicted = np.asarray(estimator.predict(features))
    if task is Task.REGRESSION:
        return regression_metrics(channel, np.asarray(target, dtype="float64"), predicted)
    scores = None
    if task is Task.BINARY:
        scores = np.asarray(estimator.predict_proba(features))[:, 1]
    return classification_metrics(
        channel, np.asarray(target), predicted, scores, positive=estimator.classes_[-1]
    )


def classification_metrics(
    channel: str,
    target: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray | None,
    positive: Any = 1,
) -> dict[str, float]:
    """Accuracy, F1 (of ``positive`` when ``scores`` is given, else macro) and AUC of scores."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    metrics = {f"{channel}:accuracy": float(accuracy_score(target, predicted))}
    if scores is not None:
        metrics[f"{channel}:f1"] = float(
            f1_score(target, predicted, pos_label=positive, average="binary", zero_division=0)
        )
        truth = target == positive
        if 0 < truth.sum() < len(truth):
            metrics[f"{channel}:auc"] = float(roc_auc_score(truth, scores))
    else:
        metrics[f"{channel}:f1"] = float(
            f1_score(target, predicted, average="macro", zero_division=0)
        )
    return metrics


def regression_metrics(channel: str, target: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Root mean squared error, mean absolute error and (two rows or more) R²."""
    import numpy as np
    from sklearn.metrics import r2_score

    error = predicted.astype("float64") - target
    metrics = {
        f"{channel}:rmse": math.sqrt(float(np.mean(error**2))),
        f"{channel}:mae": float(np.mean(np.abs(error))),
    }
    if len(target) >= 2:
        metrics[f"{channel}:r2"] = float(r2_score(target, predicted))
    return metrics
