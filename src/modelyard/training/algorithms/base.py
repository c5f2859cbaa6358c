"""The built-in algorithm interface: data and hyperparameters in, an in-memory model out.

An algorithm never touches the stores: the caller reads the channels (:func:`read_dataset`),
validates the hyperparameters, calls :meth:`Algorithm.fit`, and registers
``TrainedModel.model`` under ``TrainedModel.flavor``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from modelyard.training.hyperparameters import Hyperparameter, validate

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.training.data import Dataset

Progress = Callable[[int, int, dict[str, float]], None]
"""``progress(step, total_steps, metrics_so_far)``: called per boosting round or epoch."""


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """What :meth:`Algorithm.fit` produced.

    Attributes:
        model: The in-memory model to register (``xgboost.Booster``, ``lightgbm.Booster``, a
            scikit-learn estimator).
        flavor: The runtime flavor it registers as.
        metrics: Final metrics named like SageMaker's (``train:auc``, ``validation:logloss``).
        input_example: The first five feature rows, as the model takes them.
        rounds: Boosting rounds in the returned model (the best one under early stopping).
        history: Per-round metrics, one dict per round (boosting algorithms), for pruning.
        trusted_types: skops types the model needs trusted to be registered and loaded
            (pass ``Trust(types=trusted_types)``); empty for non-sklearn flavors.
        classes: For boosters and pipelines trained on encoded labels, the label each
            class index (output column) stands for; empty for regression, clustering, and
            scikit-learn classifiers (which keep their own ``classes_``).
        warnings: Library warnings worth a line in the job log (a solver did not converge).
    """

    model: Any
    flavor: str
    metrics: dict[str, float]
    input_example: pd.DataFrame
    rounds: int | None = None
    history: tuple[dict[str, float], ...] = ()
    trusted_types: tuple[str, ...] = ()
    classes: tuple[Any, ...] = ()
    warnings: tuple[str, ...] = ()


class Algorithm(ABC):
    """One built-in algorithm; stateless, one module each under ``training/algorithms/``."""

    name: ClassVar[str]
    flavor: ClassVar[str]
    hyperparameters: ClassVar[Mapping[str, Hyperparameter]]
    supervised: ClassVar[bool] = True
    """False when the algorithm needs no target (read its data with ``require_target=False``)."""
    rounds_hyperparameter: ClassVar[str | None] = None
    """The hyperparameter that counts rounds, for algorithms that report metrics per round
    (tuning prunes on them); None when ``progress`` is only called once, at the end."""

    def validate(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """:func:`~modelyard.training.hyperparameters.validate` against this algorithm's specs."""
        return validate(self.hyperparameters, given)

    @abstractmethod
    def fit(
        self,
        train: Dataset,
        validation: Dataset | None,
        hp: Mapping[str, Any],
        progress: Progress | None = None,
    ) -> TrainedModel:
        """Train on ``train``, evaluating on ``train`` and ``validation`` as it goes.

        Args:
            train: The training channel.
            validation: The validation channel (same feature columns), if any.
            hp: Hyperparameters, typed or as strings; missing ones take their defaults.
            progress: Called after each round/epoch, or once at the end when the library
                offers no per-round hook. An exception it raises stops the training.

        Returns:
            The trained model, its metrics and what registering it needs.

        Raises:
            InvalidInput: invalid hyperparameters, non-numeric features where numbers are
                needed, a target that does not fit the task (one class, text for regression),
                or a validation channel whose columns differ from the training channel's.
        """


def hp_table(*specs: Hyperparameter) -> Mapping[str, Hyperparameter]:
    """An algorithm's hyperparameter mapping, keyed by name, in declaration order."""
    from types import MappingProxyType

    return MappingProxyType({spec.name: spec for spec in specs})
