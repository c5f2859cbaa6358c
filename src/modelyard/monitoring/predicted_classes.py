"""Which classes a model version's per-minute class shares (``class_share.<class>``) can hold.

Servers count the classes of a model's first output column when it holds labels (integers,
booleans or strings), each by its text (``str`` of the value: ``1``, ``True``, ``churned``); a
column of floats (a regressor's numbers, a probability) is counted as numbers, never as
classes. A version's classes are read from its baseline's predictions: the categories of a
column of strings, or the exact values of a column of whole numbers or booleans (which a
profile keeps as numbers). When the baseline cannot tell (none, too many categories, values
kept only approximately), the classes are unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelyard.domain.quality import Task
from modelyard.domain.registry import ModelVersion
from modelyard.monitoring.model_task import class_key, model_task
from modelyard.monitoring.profile import Profile
from modelyard.monitoring.sketch import keys_to_floats


@dataclass(frozen=True, slots=True)
class PredictedClasses:
    """What a version predicts, as far as class shares go.

    Attributes:
        regressor: The version is a regressor: it predicts numbers, never a class.
        classes: The texts of the classes it predicts (as the series name them); None when
            unknown.
    """

    regressor: bool
    classes: frozenset[str] | None


def predicted_classes(version: ModelVersion, baseline: Profile | None) -> PredictedClasses:
    """The classes ``version`` predicts, from its task and ``baseline`` (its baseline, if any)."""
    task = model_task(version)
    if task.task is Task.REGRESSION:
        return PredictedClasses(True, None)
    if baseline is None or baseline.predictions is None:
        return PredictedClasses(False, None)
    columns = baseline.predictions.column_profiles
    if not columns:
        return PredictedClasses(False, None)
    first = columns[0]  # the series count the first output's classes
    if first.categories is not None and not first.categories.overflow:
        return PredictedClasses(False, frozenset(t for _, t, _ in first.categories.categories))
    numbers = first.numbers
    if numbers is None or numbers.shift != 0 or task.output_kind not in ("i", "b"):
        return PredictedClasses(False, None)
    values = keys_to_floats(np.asarray(numbers.buckets))
    if task.output_kind == "b":
        return PredictedClasses(False, frozenset(str(bool(v)) for v in values))
    if not all(float(v).is_integer() for v in values):
        return PredictedClasses(False, None)
    return PredictedClasses(False, frozenset(class_key(float(v)) for v in values))
