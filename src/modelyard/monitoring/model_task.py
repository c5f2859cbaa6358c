"""What a model version predicts, and how its captured outputs and users' labels compare.

A version's task is read from what the registry knows, first found wins:

1. ``params["classes"]`` (recorded by training jobs for boosters and pipelines trained on
   encoded labels): a classifier whose outputs are class indices or class probabilities,
   ``classes[i]`` being the label of index (or probability column) ``i``;
2. ``params["objective"]`` of a two-class probability (``binary:logistic``, LightGBM's
   ``binary``) with one float output: the probability of class ``1`` (classes ``0``, ``1``);
3. its metrics' names (``validation:auc`` → classifier, ``validation:rmse`` → regressor);
4. its signature's outputs: several columns are class probabilities, one column of booleans,
   integers or strings holds labels, one of floats holds a regressor's numbers.

A classifier without recorded classes outputs labels itself (a scikit-learn classifier);
``params["modelyard.labels"]`` (recorded at registration from the estimator's ``classes_``)
lists the labels it can answer, and feedback with another label is refused. Without them,
one float output column is read as labels unless :func:`probability_task` finds every
captured value in [0, 1]: then it is the probability of the positive class (an XGBoost
``binary:logistic`` model registered by hand, with metric names only).
Labels and predicted classes are compared through :func:`class_key`, so ``1``, ``1.0`` and
``"1"`` name the same class; for such a probability of class 1, ``true`` and ``false`` name
``1`` and ``0`` (:func:`label_class`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.domain.quality import Task
from modelyard.domain.registry import ModelVersion

_CLASSIFIER_METRICS = frozenset(
    {"accuracy", "auc", "aucpr", "f1", "precision", "recall", "logloss", "error", "merror"}
    | {"mlogloss", "binary_logloss", "multi_logloss", "binary_error", "multi_error"}
)
_REGRESSOR_METRICS = frozenset({"rmse", "mae", "mse", "r2", "mape", "rmsle", "l1", "l2"})
#: Objectives whose one output column is the probability of class 1 of labels 0 and 1.
_BINARY_PROBABILITY_OBJECTIVES = frozenset({"binary:logistic", "binary"})
#: The version parameter listing the labels a classifier that predicts labels can answer.
LABELS_PARAM = "modelyard.labels"
_LABEL_KINDS = {"bool": "b", "int": "i", "uint": "i", "object": "O", "str": "O", "string": "O"}


@dataclass(frozen=True, slots=True)
class ModelTask:
    """How to read one version's outputs.

    Attributes:
        task: Classification or regression; None when nothing tells.
        classes: For a classifier whose outputs are encoded (indices or probabilities), the
            label of each index; None when its outputs are the labels themselves.
        labels: For a classifier whose outputs are the labels themselves, the labels it can
            answer, when recorded (the last of two is the positive class, as scikit-learn's
            ``classes_`` orders them); None otherwise.
        output_kind: The numpy kind of its (first) output column: ``f``, ``i``, ``b``, ``O``,
            or ``""`` when unknown.
        outputs: How many output columns it has (0: unknown).
    """

    task: Task | None
    classes: tuple[str, ...] | None = None
    output_kind: str = ""
    outputs: int = 0
    labels: tuple[str, ...] | None = None

    def describe(self) -> str:
        if self.task is Task.REGRESSION:
            return "a regressor"
        if self.task is Task.CLASSIFICATION:
            return "a classifier"
        return "a model of unknown kind"


def _kind(dtype: str) -> str:
    name = dtype.lower().rstrip("0123456789")
    if name.startswith("float") or name in ("double", "fp"):
        return "f"
    return _LABEL_KINDS.get(name, "O" if name.startswith(("<u", "|s", "<s")) else "")


def model_task(version: ModelVersion) -> ModelTask:
    """The task of ``version``, from its recorded classes, metric names and signature."""
    outputs = version.signature.outputs if version.signature else ()
    kind = _kind(outputs[0].dtype) if outputs else ""
    count = len(outputs)
    classes = _recorded_classes(version.params.get("classes"))
    if classes:
        return ModelTask(Task.CLASSIFICATION, classes, kind, count)
    objective = str(version.params.get("objective", "")).strip().lower()
    if objective in _BINARY_PROBABILITY_OBJECTIVES and count <= 1 and kind in ("f", ""):
        return ModelTask(Task.CLASSIFICATION, ("0", "1"), "f", count)
    names = {key.rpartition(":")[2].lower() for key in version.metrics}
    labels = _recorded_classes(version.params.get(LABELS_PARAM))
    if labels and count <= 1:  # float classes too: its outputs are labels, not probabilities
        return ModelTask(Task.CLASSIFICATION, None, kind, count, labels)
    if names & _CLASSIFIER_METRICS:
        probabilities = count > 1
        encoded = tuple(str(i) for i in range(count)) if probabilities else None
        return ModelTask(Task.CLASSIFICATION, encoded, kind, count)
    if names & _REGRESSOR_METRICS:
        return ModelTask(Task.REGRESSION, None, kind, count)
    if count > 1:
        return ModelTask(Task.CLASSIFICATION, tuple(str(i) for i in range(count)), kind, count)
    if kind in ("b", "i", "O"):
        return ModelTask(Task.CLASSIFICATION, None, kind, count)
    if kind == "f":
        return ModelTask(Task.REGRESSION, None, kind, count)
    return ModelTask(None, None, kind, count)


def _recorded_classes(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    try:
        values = json.loads(text)
    except ValueError:
        return None
    if not isinstance(values, list) or not values:
        return None
    return tuple(str(v) for v in values)


def class_key(value: Any) -> str:
    """The text a class is compared by: ``True``/``False`` for booleans, whole numbers
    without a decimal point (``1.0`` → ``1``), other numbers and strings as they are."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    item = getattr(value, "item", None)  # a numpy scalar
    if callable(item):
        return class_key(item())
    return str(value)


def match_class(label: Any, classes: Sequence[str]) -> str | None:
    """The class of ``classes`` that ``label`` names: the same text, else the same number
    (``1`` names class ``"1.0"``, ``"1"`` names ``"1"``); booleans only ``True``/``False``."""
    key = class_key(label)
    if key in classes:
        return key
    if isinstance(label, bool):
        return None
    number = _number(label)
    if number is None:
        return None
    for name in classes:
        if _number(name) == number:
            return name
    return None


def label_class(task: ModelTask, label: Any) -> str | None:
    """The class ``label`` names for ``task`` (:func:`match_class` of its classes; the label's
    :func:`class_key` when its outputs are labels). For the probability of class 1 (classes
    ``0`` and ``1``, one float column) ``true`` and ``false`` name ``1`` and ``0``: labels of
    either kind, sent in any mix, are one set of classes."""
    if task.classes is None:
        return class_key(label) if task.labels is None else match_class(label, task.labels)
    if isinstance(label, bool) and _probability_of_one(task):
        return task.classes[int(label)]
    return match_class(label, task.classes)


def _probability_of_one(task: ModelTask) -> bool:
    return task.classes == ("0", "1") and task.output_kind == "f" and task.outputs <= 1


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def check_label(task: ModelTask, label: Any, model: str) -> str | None:
    """Why ``label`` cannot be a label of ``model`` (its ref, for the message), or None.

    A regressor takes numbers; a classifier with known classes one of them; a classifier
    whose outputs are labels a value of their type (a whole number for integer classes, a
    boolean for boolean ones).
    """
    if task.task is Task.REGRESSION:
        if isinstance(label, bool) or not isinstance(label, int | float):
            return f"{model} is a regressor and takes a number, not {_shown(label)}"
        return None
    if task.task is not Task.CLASSIFICATION:
        return None
    known = task.classes if task.classes is not None else task.labels
    if known is not None:
        if label_class(task, label) is None:
            shown = list(known[:20]) + (["…"] if len(known) > 20 else [])
            return f"{_shown(label)} is not one of the classes of {model}: {shown}"
        return None
    if task.output_kind == "b" and not isinstance(label, bool):
        return f"{model} predicts true/false, not {_shown(label)}"
    if task.output_kind == "i" and (
        isinstance(label, bool) or _number(label) is None or not float(label).is_integer()
    ):
        return f"{model} predicts whole-number classes, not {_shown(label)}"
    return None


def _shown(label: Any) -> str:
    name = "string" if isinstance(label, str) else type(label).__name__
    kind = f"an {name}" if name[:1] in "aeiou" else f"a {name}"
    return f"{kind} ({json.dumps(label)[:60]})"


def task_from_data(labels: list[Any], outputs: list[Any]) -> ModelTask:
    """A version the registry no longer knows: strings or booleans among labels, or lists of
    outputs, make it a classifier; numbers predicted with fractions a regressor."""
    if any(isinstance(v, list) for v in outputs):
        width = max(len(v) for v in outputs if isinstance(v, list))
        return ModelTask(Task.CLASSIFICATION, tuple(str(i) for i in range(width)), "f", width)
    if any(isinstance(v, str | bool) for v in labels):
        return ModelTask(Task.CLASSIFICATION)
    numbers = [v for v in outputs if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers and any(not float(v).is_integer() for v in numbers):
        return ModelTask(Task.REGRESSION)
    return ModelTask(Task.CLASSIFICATION)


def probability_task(task: ModelTask, outputs: list[Any]) -> ModelTask:
    """``task``, or for a classifier thought to output labels itself from one float column
    whose captured values all lie in [0, 1], some strictly between, a two-class task reading
    that column as the probability of class ``1`` of ``0``/``1`` (labelled ``true``/``false``
    too: :func:`label_class`), whatever the labels: a batch judged when it arrives and a window
    scored later hold different mixes of them. (Such a model is a binary
    booster registered with metric names only; a model that outputs labels outputs whole
    numbers.)"""
    if task.task is not Task.CLASSIFICATION or task.classes is not None or task.labels:
        return task
    if task.outputs > 1 or task.output_kind not in ("f", ""):
        return task
    if not outputs or not all(is_number(v) and 0.0 <= v <= 1.0 for v in outputs):
        return task
    if all(float(v).is_integer() for v in outputs):
        return task
    return ModelTask(Task.CLASSIFICATION, ("0", "1"), "f", 1)


def read_class(task: ModelTask, output: Any) -> tuple[str, Any] | None:
    """The predicted class of one output, and its scores (None when no probabilities)."""
    classes = task.classes
    if classes is None:
        if output is None or isinstance(output, list):
            return None
        return class_key(output), None
    if isinstance(output, list):  # one probability per class
        if len(output) != len(classes) or not all(is_number(v) for v in output):
            return None
        best = max(range(len(output)), key=lambda i: output[i])
        return classes[best], output
    if not is_number(output):
        return None
    if len(classes) == 2 and task.output_kind == "f":  # the probability of classes[1]
        return classes[1 if output >= 0.5 else 0], [1.0 - output, output]
    index = float(output)
    if not index.is_integer() or not 0 <= index < len(classes):
        return None
    return classes[int(index)], None


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
