"""Paired predictions of production and a shadow variant: the pure computations behind
``ShadowCompareService`` (records: ``domain.shadow_comparison``).

:func:`pair` joins the captured rows of the two sides on inference id and row into one frame
with the columns

    inference_id, row
    time_p, variant_p, model_p, prediction_p     production's row (model as ``name:version``)
    time_s, variant_s, model_s, prediction_s     the shadow's row

where a prediction is one value, or a list for a model with several output columns (as
captured rows hold them, and as :mod:`~modelyard.monitoring.model_quality` reads them).

Classes are read from outputs as model quality reads them (``read_class``: labels, class
indices, class probabilities, or the probability of class 1), each side by its own model's
task, so a shadow that outputs probabilities still agrees with a production model that
outputs labels.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.domain.capture import SINGLE_OUTPUT
from modelyard.domain.drift import DriftConfig, FeatureDrift
from modelyard.domain.registry import ModelVersion
from modelyard.domain.shadow_comparison import (
    Agreement,
    ClassPair,
    Differences,
    ShadowCompareConfig,
)
from modelyard.monitoring.model_task import (
    ModelTask,
    model_task,
    probability_task,
    read_class,
    task_from_data,
)

if TYPE_CHECKING:
    import pandas as pd

KEYS = ["inference_id", "row"]
#: A model's task from its ``name:version`` and outputs (:func:`output_task`, cached).
TaskOf = Callable[[str, list[Any]], ModelTask]


def pair(production: pd.DataFrame, shadow: pd.DataFrame, outputs: Sequence[str]) -> pd.DataFrame:
    """The rows of both sides with the same inference id and row (see the module docstring).

    Args:
        production, shadow: Captured rows (``inference_id, row, time, variant, model,
            model_version`` and the ``outputs`` columns).
        outputs: The output columns: ``output.prediction`` first, then any numbered ones.
    """
    return _side(production, outputs).merge(_side(shadow, outputs), on=KEYS, suffixes=("_p", "_s"))


def output_task(version: ModelVersion | None, outputs: list[Any]) -> ModelTask:
    """How a version's ``outputs`` name classes: its recorded task, else the one its outputs
    tell (as model quality reads a version the registry no longer knows); a classifier's one
    float column with values in [0, 1] is the probability of class 1."""
    task = model_task(version) if version is not None else ModelTask(None)
    if task.task is None:
        task = task_from_data([], outputs)
    return probability_task(task, outputs)


def agreement(
    pairs: pd.DataFrame, task_of: TaskOf, config: ShadowCompareConfig
) -> tuple[Agreement, tuple[list[str], list[str]]]:
    """How often the two sides predicted the same class, the most frequent disagreements,
    and the classes of the pairs compared (production's, the shadow's)."""
    read: dict[str, list[str | None]] = {}
    for side in ("p", "s"):
        refs, outputs = pairs[f"model_{side}"].tolist(), pairs[f"prediction_{side}"].tolist()
        by_ref: dict[str, list[Any]] = {}
        for ref, output in zip(refs, outputs, strict=True):
            by_ref.setdefault(ref, []).append(output)
        tasks = {ref: task_of(ref, values) for ref, values in by_ref.items()}
        classes = (read_class(tasks[r], o) for r, o in zip(refs, outputs, strict=True))
        read[side] = [None if c is None else c[0] for c in classes]
    both = [
        (p, s) for p, s in zip(read["p"], read["s"], strict=True) if p is not None and s is not None
    ]
    compared = len(both)
    agreed = sum(p == s for p, s in both)
    counts = Counter((p, s) for p, s in both if p != s)
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: config.top_pairs]
    enough = compared >= config.min_pairs  # below it, counts only: no share reads as a rate
    found = Agreement(
        compared=compared,
        agreed=agreed,
        rate=agreed / compared if enough else None,
        unreadable=len(pairs) - compared,
        disagreements=tuple(
            ClassPair(p, s, n, n / compared if enough else None) for (p, s), n in top
        ),
    )
    return found, ([p for p, _ in both], [s for _, s in both])


def differences(
    pairs: pd.DataFrame, config: ShadowCompareConfig
) -> tuple[Differences, tuple[list[float], list[float]]]:
    """The distribution of ``shadow - production`` over the pairs with a number on both sides
    (the first output of a model with several), and those numbers (production's, the
    shadow's)."""
    import numpy as np

    values = [
        (p, s)
        for p, s in zip(
            map(_number, pairs["prediction_p"].tolist()),
            map(_number, pairs["prediction_s"].tolist()),
            strict=True,
        )
        if p is not None and s is not None
    ]
    ours = np.array([p for p, _ in values], dtype=np.float64)
    theirs = np.array([s for _, s in values], dtype=np.float64)

    def quiet() -> Any:
        """A difference past the largest float is infinite (and a quantile between two
        infinite ones NaN, shown as unknown): said as such, not warned about."""
        return np.errstate(over="ignore", invalid="ignore")

    with quiet():
        diff = theirs - ours
    gap = np.abs(diff)
    enough = len(values) >= config.min_pairs
    allowed = np.maximum(config.abs_tolerance, config.rel_tolerance * np.abs(ours))

    def stat(value: Callable[[], Any]) -> float | None:
        if not enough:  # also: an empty sample has no quantile
            return None
        with quiet():
            return float(value())

    found = Differences(
        compared=len(values),
        unreadable=len(pairs) - len(values),
        mean=stat(lambda: _mean(diff)),
        mean_abs=stat(lambda: _mean(gap)),
        p50_abs=stat(lambda: np.quantile(gap, 0.5)),
        p90_abs=stat(lambda: np.quantile(gap, 0.9)),
        p99_abs=stat(lambda: np.quantile(gap, 0.99)),
        max_abs=stat(gap.max),
        within_tolerance=stat(lambda: (gap <= allowed).mean()),
        rel_tolerance=config.rel_tolerance,
        abs_tolerance=config.abs_tolerance,
    )
    return found, (ours.tolist(), theirs.tolist())


def distribution(production: list[Any], shadow: list[Any], min_rows: int) -> FeatureDrift:
    """The shadow's predictions against production's, as a drift test compares a feature:
    classes (strings) as categories, decided by Jensen-Shannon; numbers by Kolmogorov-Smirnov,
    with Wasserstein (in production's standard deviations) among the statistics. Numbers
    within the compiled tree predictor's tolerance compare as equal, as in drift checks: a
    shadow of the same model on the other predictor answers the same predictions."""
    import pandas as pd

    from modelyard.monitoring.drift import PREDICTION_TOLERANCE, feature_drift
    from modelyard.monitoring.profile import column_profile

    kind = "object" if production and isinstance(production[0], str) else "float64"
    base = column_profile("prediction", pd.Series(production, dtype=kind))
    now = column_profile("prediction", pd.Series(shadow, dtype=kind))
    return feature_drift(base, now, DriftConfig(min_rows=min_rows), tolerance=PREDICTION_TOLERANCE)


def _side(frame: pd.DataFrame, outputs: Sequence[str]) -> pd.DataFrame:
    """One side's rows as ``inference_id, row, time, variant, model`` (``name:version``) and
    ``prediction``, each key once."""
    import pandas as pd

    frame = frame.drop_duplicates(KEYS)
    single = frame[SINGLE_OUTPUT].tolist()
    numbered = [frame[c].tolist() for c in outputs if c != SINGLE_OUTPUT]
    predictions: list[Any] = []
    for i, value in enumerate(single):
        value = _plain(value)
        if value is None and numbered:
            # A row holds the outputs of the version that answered: one column or numbered ones.
            values = [_plain(column[i]) for column in numbered]
            while values and values[-1] is None:
                values.pop()
            value = values or None
        predictions.append(value)
    model = frame["model"].astype(str) + ":" + frame["model_version"].astype(str)
    return pd.DataFrame(
        {
            "inference_id": frame["inference_id"].to_numpy(),
            "row": frame["row"].to_numpy(),
            "time": frame["time"].to_numpy(),
            "variant": frame["variant"].to_numpy(),
            "model": model.to_numpy(),
            "prediction": pd.Series(predictions, dtype="object").to_numpy(),
        }
    )


def _mean(values: Any) -> float:
    """The mean of finite ``values`` without overflowing their sum: predictions near the
    largest float (-1.7e308 each) have a finite mean their sum has not."""
    return float((values / len(values)).sum())


def _plain(value: Any) -> Any:
    """A captured value as JSON holds it: numpy scalars as Python ones, NaN and null as None."""
    import pandas as pd

    if value is None or (not isinstance(value, str | list) and bool(pd.isna(value))):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _number(output: Any) -> float | None:
    value = output[0] if isinstance(output, list) and output else output
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
