"""What the scikit-learn based algorithms share: the predictor type, convergence warnings kept
for the job log, and the skops types a fitted model needs trusted."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelyard.errors import InvalidInput, MissingDependency
from modelyard.training.algorithms._prepare import Task, check_task, infer_task
from modelyard.training.hyperparameters import Hyperparameter

PREDICTOR_TYPES = {
    "binary_classifier": Task.BINARY,
    "multiclass_classifier": Task.MULTICLASS,
    "regressor": Task.REGRESSION,
}

PREDICTOR_TYPE = Hyperparameter(
    "predictor_type",
    "choice",
    None,
    choices=tuple(PREDICTOR_TYPES),
    help="what to learn; inferred from the target when not set",
)


def resolve_task(predictor_type: str | None, target: Any, algorithm: str) -> Task:
    """The task the ``predictor_type`` hyperparameter names, or the one the target suggests.

    Raises:
        InvalidInput: the target does not fit the task (see :func:`check_task`).
    """
    task = PREDICTOR_TYPES[predictor_type] if predictor_type else infer_task(target)
    check_task(task, target, algorithm)
    return task


@contextmanager
def convergence_warnings() -> Iterator[list[str]]:
    """Collect scikit-learn's ConvergenceWarnings instead of raising or printing them.

    A solver that stopped at ``max_iter`` still gives a usable model; the job reports it
    (``TrainedModel.warnings``) rather than failing. Other warnings pass through untouched.
    """
    from sklearn.exceptions import ConvergenceWarning

    caught: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", ConvergenceWarning)
        yield caught
    for record in records:
        if issubclass(record.category, ConvergenceWarning):
            caught.append(str(record.message))
        else:
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)


def skops_trusted_types(model: Any) -> tuple[str, ...]:
    """The types outside skops' default trusted set that ``model`` holds, sorted.

    They are ours (we built the model), so the caller registers it with
    ``Trust(types=...)`` of exactly these.
    """
    try:
        import skops.io as sio
    except ImportError as exc:
        raise MissingDependency(
            f"saving scikit-learn models needs skops ({exc}): pip install skops"
        ) from exc
    return tuple(sorted(sio.get_untrusted_types(data=sio.dumps(model))))


def require_rows(count: int, needed: int, algorithm: str, what: str) -> None:
    """Refuse a training channel with fewer than ``needed`` rows.

    Raises:
        InvalidInput: naming the algorithm and the reason.
    """
    if count < needed:
        raise InvalidInput(f"{algorithm} needs at least {needed} training rows {what}; got {count}")
