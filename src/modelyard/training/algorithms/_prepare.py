"""Turning a Dataset into what a model library takes: numeric features, a task, encoded labels.

Shared by every built-in algorithm so that they refuse bad input with the same messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelyard.training.data import Dataset

EXAMPLE_ROWS = 5
MAX_INFERRED_CLASSES = 20
"""An integer target 0..k-1 with at most this many values is read as k classes."""


class Task(enum.StrEnum):
    """What a supervised algorithm learns."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"

    @property
    def classifier(self) -> bool:
        return self is not Task.REGRESSION


def target_of(data: Dataset, algorithm: str, channel: str) -> pd.Series:
    """The target of a channel, refusing none, missing and infinite values.

    Raises:
        InvalidInput: the channel has no target, or the target has missing or infinite values.
    """
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if data.target is None:
        raise InvalidInput(f"{algorithm} needs a target, and the {channel} data has none")
    missing = int(data.target.isna().sum())
    if missing:
        raise InvalidInput(
            f"the {channel} target {data.target.name!r} has {missing} missing value(s); "
            "drop or fill those rows first"
        )
    if is_numeric_dtype(data.target) and not is_bool_dtype(data.target):
        # A library either refuses them in its own words or trains on them: LightGBM fitted
        # a regression to them and reported an rmse of 1e36.
        infinite = int(np.isinf(data.target.to_numpy(dtype="float64")).sum())
        if infinite:
            raise InvalidInput(
                f"the {channel} target {data.target.name!r} has {infinite} infinite value(s); "
                "drop or fix those rows first"
            )
    return data.target


def numeric_features(data: Dataset, algorithm: str, channel: str) -> pd.DataFrame:
    """The features as float64 (booleans as 0/1, missing as NaN), with string column names.

    Raises:
        InvalidInput: some columns are not numeric, or hold infinite values; the message names
            them.
    """
    from pandas.api.types import is_numeric_dtype

    frame = data.features
    bad = [str(c) for c in frame.columns if not is_numeric_dtype(frame[c])]
    if bad:
        raise InvalidInput(
            f"{algorithm} needs numeric features, but these {channel} columns are not numbers: "
            f"{', '.join(bad)}. Encode them first (or use text-classifier for a text column)"
        )
    numeric = frame.astype("float64")
    numeric.columns = [str(c) for c in frame.columns]
    _refuse_infinite(numeric, channel)
    return numeric


def _refuse_infinite(features: pd.DataFrame, channel: str) -> None:
    """Refuse infinite feature values, naming the first column that holds some: LightGBM
    trained on them, the other libraries refused them in words that named no column."""
    import numpy as np

    counts = np.isinf(features.to_numpy()).sum(axis=0)
    bad = [(column, int(n)) for column, n in zip(features.columns, counts, strict=True) if n]
    if bad:
        column, n = bad[0]
        others = f" (and {len(bad) - 1} other column(s) hold some)" if len(bad) > 1 else ""
        raise InvalidInput(
            f"the {channel} column {column!r} has {n} infinite value(s){others}; "
            "drop or fix those rows first"
        )


def refuse_missing(features: pd.DataFrame, algorithm: str, channel: str) -> None:
    """Refuse missing feature values, for algorithms that cannot handle them.

    Raises:
        InvalidInput: naming the columns with missing values.
    """
    counts = features.isna().sum()
    bad = [str(c) for c, n in counts.items() if n]
    if bad:
        raise InvalidInput(
            f"{algorithm} cannot handle missing values, found in these {channel} columns: "
            f"{', '.join(bad)}. Fill them first (or use xgboost, lightgbm or random-forest)"
        )


def same_columns(train: pd.DataFrame, validation: pd.DataFrame) -> None:
    """Refuse a validation channel whose feature columns differ from the training channel's.

    Raises:
        InvalidInput: naming the missing and extra columns (or the order difference).
    """
    want, got = [str(c) for c in train.columns], [str(c) for c in validation.columns]
    if want == got:
        return
    missing = [c for c in want if c not in got]
    extra = [c for c in got if c not in want]
    detail = (
        "; ".join(
            part
            for part in (
                f"missing: {', '.join(missing)}" if missing else "",
                f"extra: {', '.join(extra)}" if extra else "",
            )
            if part
        )
        or f"their order differs (train: {', '.join(want)})"
    )
    raise InvalidInput(
        f"the validation data's feature columns differ from the training data's: {detail}"
    )


def infer_task(target: pd.Series) -> Task:
    """Guess the task from the target's values.

    Text, booleans and categories are classes; integers 0..k-1 with k at most
    :data:`MAX_INFERRED_CLASSES` (or any two values) are classes; other numbers are a
    regression target.
    """
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    distinct = target.dropna().unique()
    if not is_numeric_dtype(target) or is_bool_dtype(target):
        return Task.BINARY if len(distinct) <= 2 else Task.MULTICLASS
    values = np.asarray(distinct, dtype="float64")
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        return Task.REGRESSION
    if len(values) <= 2:
        return Task.BINARY
    if len(values) <= MAX_INFERRED_CLASSES and set(values) == set(range(len(values))):
        return Task.MULTICLASS
    return Task.REGRESSION


def check_task(task: Task, target: pd.Series, algorithm: str) -> None:
    """Refuse a target that does not fit ``task``.

    Raises:
        InvalidInput: a classifier target with one class, a binary target with more than two,
            or a regression target that is not numeric.
    """
    from pandas.api.types import is_numeric_dtype

    name = target.name
    if task is Task.REGRESSION:
        if not is_numeric_dtype(target):
            raise InvalidInput(f"{algorithm}: a regression target must be numeric; {name!r} is not")
        return
    distinct = target.unique()
    if len(distinct) < 2:
        raise InvalidInput(
            f"{algorithm}: the target {name!r} has a single class ({_plain(distinct[0])!r}); "
            "a classifier needs at least two"
        )
    if task is Task.BINARY and len(distinct) > 2:
        raise InvalidInput(
            f"{algorithm}: a binary classifier needs exactly two classes; the target {name!r} "
            f"has {len(distinct)}"
        )


def encode_labels(
    target: pd.Series, classes: tuple[Any, ...] | None = None, channel: str = "train"
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Class indices 0..k-1 for ``target``, and the label each index stands for.

    Args:
        target: Class labels.
        classes: The training classes, when encoding a validation target.
        channel: Named in the error message.

    Raises:
        InvalidInput: the target holds labels not among ``classes``.
    """
    import numpy as np
    import pandas as pd

    if classes is None:
        found = [_plain(v) for v in target.unique()]
        try:
            classes = tuple(sorted(found))
        except TypeError:  # mixed types: order by their text, still deterministic
            classes = tuple(sorted(found, key=str))
    codes = np.asarray(pd.Categorical(target, categories=list(classes)).codes, dtype="int64")
    if (codes < 0).any():
        unseen = sorted({str(v) for v in target[codes < 0]})
        raise InvalidInput(
            f"the {channel} target holds labels the training data does not: {', '.join(unseen)}"
        )
    return codes, classes


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds (JSON-able)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def example_rows(features: pd.DataFrame) -> pd.DataFrame:
    """The input example: the first rows of the features, as the model takes them."""
    return features.head(EXAMPLE_ROWS).reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class SupervisedInputs:
    """Features and labels of the train (and validation) channels, checked and encoded alike."""

    task: Task
    features: pd.DataFrame
    labels: np.ndarray
    classes: tuple[Any, ...]
    valid_features: pd.DataFrame | None
    valid_labels: np.ndarray | None


def supervised_inputs(
    train: Dataset,
    validation: Dataset | None,
    algorithm: str,
    task: Task | None,
    *,
    early_stopping: bool = False,
) -> SupervisedInputs:
    """Numeric features, the task (given, or inferred from the target) and labels (classes
    encoded 0..k-1) of both channels.

    Raises:
        InvalidInput: non-numeric features, a target that does not fit the task, validation
            columns that differ from training's, or early stopping without validation data.
    """
    features = numeric_features(train, algorithm, "train")
    target = target_of(train, algorithm, "train")
    task = task or infer_task(target)
    check_task(task, target, algorithm)
    if task.classifier:
        labels, classes = encode_labels(target)
    else:
        labels, classes = target.to_numpy(dtype="float64"), ()
    if early_stopping and validation is None:
        raise InvalidInput("early_stopping_rounds needs a validation channel")
    if validation is None:
        return SupervisedInputs(task, features, labels, classes, None, None)
    valid_features = numeric_features(validation, algorithm, "validation")
    same_columns(features, valid_features)
    valid_target = target_of(validation, algorithm, "validation")
    valid_labels = (
        encode_labels(valid_target, classes, "validation")[0]
        if task.classifier
        else valid_target.to_numpy(dtype="float64")
    )
    return SupervisedInputs(task, features, labels, classes, valid_features, valid_labels)
