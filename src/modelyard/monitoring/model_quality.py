"""Quality of labelled predictions, per window, variant and model version: the computation
behind ``modelyard monitor quality`` (pure: a DataFrame in, :class:`QualityPoint` records out).

:func:`quality_points` takes one row per labelled prediction, with the columns

    served_at   datetime64[UTC]  when the prediction was made
    variant     str
    model       str              ``name:version`` that made it
    label       object           the label sent (a JSON scalar)
    prediction  object           the captured output: one value, or a list (one per column)

and scores each window ``[start, end)`` of each (variant, model) with the
scikit-learn metrics: accuracy, precision, recall, F1 (of the positive class for two classes,
where precision needs it predicted, recall labelled, F1 either; macro-averaged for more) and
ROC AUC (only from captured probabilities, with every class present) for classifiers; RMSE
and MAE for regressors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelyard.domain.quality import (
    METRICS,
    VALIDATION_KEYS,
    MetricComparison,
    QualityConfig,
    QualityPoint,
    QualityStatus,
    Task,
    relative_worsening,
)
from modelyard.monitoring.model_task import (
    ModelTask,
    is_number,
    label_class,
    probability_task,
    read_class,
    task_from_data,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COLUMNS = ("served_at", "variant", "model", "label", "prediction")
_BINARY_POSITIVES = ({"0", "1"}, "1"), ({"False", "True"}, "True")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What is known of one model version: its task and its validation metrics."""

    task: ModelTask
    validation: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Decoded:
    truth: list[Any]
    predicted: list[Any]
    scores: np.ndarray | None  # one column per class of ``classes`` (or the positive's)
    classes: tuple[str, ...] | None
    dropped: int


def baseline_of(metrics: Mapping[str, float], task: Task) -> dict[str, float]:
    """The validation value of each metric of ``task`` that ``metrics`` (a version's) holds."""
    out: dict[str, float] = {}
    for name in METRICS[task]:
        for key in VALIDATION_KEYS[name]:
            value = metrics.get(key)
            if value is not None and math.isfinite(value):
                out[name] = float(value)
                break
    return out


def quality_points(
    frame: pd.DataFrame,
    *,
    endpoint: str,
    windows: Sequence[tuple[datetime, datetime]],
    models: Mapping[str, ModelInfo],
    expected: Iterable[tuple[str, str]] = (),
    config: QualityConfig | None = None,
) -> list[QualityPoint]:
    """One point per window ``[start, end)`` and (variant, model) with labels in it, plus
    one (without labels: INSUFFICIENT_DATA) for each ``expected`` pair that has none; ordered
    by start, variant, model. ``models`` maps a ``name:version`` to what is known of it; a
    model missing from it is judged by its data alone, without a baseline."""
    config = config or QualityConfig()
    points: list[QualityPoint] = []
    expected = list(expected)
    for start, end in windows:
        in_window = frame[(frame["served_at"] >= start) & (frame["served_at"] < end)]
        groups = {key: part for key, part in in_window.groupby(["variant", "model"], sort=False)}
        for key in sorted({*groups, *expected}):
            variant, model = str(key[0]), str(key[1])
            part = groups.get(key)
            info = models.get(model)
            points.append(
                _point(endpoint, variant, model, start, end, part, info, config),
            )
    return points


def _point(
    endpoint: str,
    variant: str,
    model: str,
    start: datetime,
    end: datetime,
    part: pd.DataFrame | None,
    info: ModelInfo | None,
    config: QualityConfig,
) -> QualityPoint:
    labels = [] if part is None else part["label"].tolist()
    outputs = [] if part is None else part["prediction"].tolist()
    task = info.task if info is not None and info.task.task is not None else None
    if task is None and labels:
        task = task_from_data(labels, outputs)
    notes: list[str] = []
    if task is None or task.task is None:
        return QualityPoint(
            endpoint, variant, model, start, end, None, 0, {}, (), QualityStatus.INSUFFICIENT_DATA
        )
    kind = task.task
    metrics: dict[str, float | None] = dict.fromkeys(METRICS[kind])
    rows = 0
    if labels:
        task = probability_task(task, outputs)
        decoded = _decode(task, labels, outputs)
        rows = len(decoded.truth)
        if decoded.dropped:
            notes.append(f"{decoded.dropped} labelled rows whose prediction could not be read")
        if rows:
            scored = (
                _regression(decoded) if kind is Task.REGRESSION else _classification(decoded, notes)
            )
            metrics.update(scored)
    baseline = baseline_of(info.validation, kind) if info is not None else {}
    enough = rows >= config.min_rows
    comparisons = tuple(
        _compare(name, value, baseline[name], config, judge=enough)
        for name, value in metrics.items()
        if value is not None and name in baseline
    )
    unmeasured = [name for name in baseline if metrics.get(name) is None]
    if not enough:
        status = QualityStatus.INSUFFICIENT_DATA
        notes.append(f"{rows} labelled rows; a verdict needs {config.min_rows}")
    elif not comparisons and unmeasured:
        # The version has validation values, but not one of them is defined in this window
        # (ROC AUC with one class labelled): no verdict, and no claim that there is no
        # baseline.
        status = QualityStatus.INSUFFICIENT_DATA
        notes.append(
            f"{', '.join(unmeasured)} (the metrics with a validation value) cannot be "
            "measured in this window"
        )
    elif not comparisons:
        status = QualityStatus.NO_BASELINE
    elif any(c.degraded for c in comparisons):
        status = QualityStatus.DEGRADED
    else:
        status = QualityStatus.OK
    return QualityPoint(
        endpoint,
        variant,
        model,
        start,
        end,
        kind,
        rows,
        metrics,
        comparisons,
        status,
        tuple(notes),
    )


def _compare(
    name: str, value: float, baseline: float, config: QualityConfig, *, judge: bool
) -> MetricComparison:
    """``value`` against ``baseline``; never degraded unless ``judge`` (enough rows)."""
    change = relative_worsening(name, value, baseline)
    return MetricComparison(
        name, value, baseline, change, judge and change > config.max_relative_drop
    )


def _decode(task: ModelTask, labels: list[Any], outputs: list[Any]) -> _Decoded:
    """Labels and predictions as comparable values (numbers for a regressor, class keys for a
    classifier), and class scores when probabilities were captured; rows whose prediction
    cannot be read (null, the wrong shape) or whose label names no class are dropped."""
    import numpy as np

    truth: list[Any] = []
    predicted: list[Any] = []
    scores: list[Any] = []
    classes = task.classes if task.classes is not None else task.labels
    for label, output in zip(labels, outputs, strict=True):
        if task.task is Task.REGRESSION:
            value = output[0] if isinstance(output, list) and output else output
            if is_number(value) and is_number(label):
                truth.append(float(label))
                predicted.append(float(value))
            continue
        read = read_class(task, output)
        wanted = label_class(task, label)
        if read is None or wanted is None:
            continue
        truth.append(wanted)
        predicted.append(read[0])
        scores.append(read[1])
    dropped = len(labels) - len(truth)
    has_scores = bool(scores) and all(s is not None for s in scores)
    return _Decoded(
        truth,
        predicted,
        np.asarray(scores, dtype="float64") if has_scores else None,
        classes,
        dropped,
    )


def _regression(decoded: _Decoded) -> dict[str, float | None]:
    """RMSE and MAE. The errors are scaled by the largest before squaring, so labels far off
    (1e200) give their true RMSE instead of overflowing to infinity; an error too large for a
    float (labels near ±1.8e308 on both sides) makes both infinite, which compares as
    degraded (and is ``null`` in JSON output)."""
    import numpy as np

    truth = np.asarray(decoded.truth, dtype=np.float64)
    predicted = np.asarray(decoded.predicted, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        errors = np.abs(truth - predicted)
        largest = float(errors.max()) if len(errors) else 0.0
        if not math.isfinite(largest):
            return {"rmse": math.inf, "mae": math.inf}
        if largest == 0.0:
            return {"rmse": 0.0, "mae": 0.0}
        rmse = largest * math.sqrt(float(np.mean(np.square(errors / largest))))
        mae = largest * float(np.mean(errors / largest))
    return {"rmse": rmse, "mae": mae}


def _classification(decoded: _Decoded, notes: list[str]) -> dict[str, float | None]:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    truth, predicted = decoded.truth, decoded.predicted
    seen = sorted({*truth, *predicted})
    classes = decoded.classes
    positive = _positive(classes, seen)
    pos: str | int = 1  # unused by the macro average
    if positive is not None:
        average, labels, pos = "binary", None, positive
    else:
        average, labels = "macro", seen
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, average=average, labels=labels, pos_label=pos, zero_division=0
    )
    out: dict[str, float | None] = {
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": _roc_auc(decoded, positive, notes),
    }
    if positive is not None:
        # Of the positive class, undefined (scikit-learn's zero_division gives 0.0) without
        # one predicted (precision), labelled (recall), or either (F1 = 2TP / (2TP + FP + FN),
        # a true 0 for positives predicted and none labelled): a quiet window of negatives
        # all predicted right must not read as precision 0 and degrade.
        if positive not in predicted:
            out["precision"] = None
            notes.append(f"precision needs a prediction of the positive class ({positive})")
        if positive not in truth:
            out["recall"] = None
            if positive not in predicted:
                out["f1"] = None
                notes.append(f"recall and f1 need labels of the positive class ({positive})")
            else:
                notes.append(f"recall needs labels of the positive class ({positive})")
    return out


def _positive(classes: tuple[str, ...] | None, seen: list[str]) -> str | None:
    """The positive class of a two-class problem (the last recorded class, or ``1``/``True``,
    or the larger of two seen values); None for more classes."""
    if classes is not None:
        return classes[-1] if len(classes) == 2 else None
    for pair, positive in _BINARY_POSITIVES:
        if set(seen) <= pair:
            return positive
    return seen[-1] if len(seen) == 2 else None


def _roc_auc(decoded: _Decoded, positive: str | None, notes: list[str]) -> float | None:
    from sklearn.metrics import roc_auc_score

    classes = decoded.classes
    if decoded.scores is None or classes is None:
        notes.append("roc_auc needs captured class probabilities")
        return None
    present = set(decoded.truth)
    if positive is not None:
        if len(present) < 2:
            notes.append("roc_auc needs labels of both classes")
            return None
        truth = [t == positive for t in decoded.truth]
        return float(roc_auc_score(truth, decoded.scores[:, classes.index(positive)]))
    if present != set(classes):
        notes.append("roc_auc needs labels of every class")
        return None
    try:
        return float(
            roc_auc_score(decoded.truth, decoded.scores, multi_class="ovr", labels=list(classes))
        )
    except ValueError as exc:  # probabilities that do not sum to one
        notes.append(f"roc_auc: {exc}")
        return None


def window_starts(since: datetime, until: datetime, bucket: timedelta) -> list[datetime]:
    """The starts of the windows from ``since``, every ``bucket``, that begin before ``until``
    (no start past ``until`` is computed, so none leaves the calendar near year 9999)."""
    starts: list[datetime] = []
    start = since
    while start < until:
        starts.append(start)
        if until - start <= bucket:
            break
        start += bucket
    return starts


def cut_window(start: datetime, length: timedelta, until: datetime) -> datetime:
    """The end of the window of ``length`` from ``start``, cut at ``until`` (never a sum past
    ``until``, which near year 9999 would leave the calendar)."""
    return start + min(length, until - start)
