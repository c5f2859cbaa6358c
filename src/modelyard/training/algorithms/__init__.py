"""The built-in algorithms (SageMaker's built-in algorithms role), found by name.

Importing this package imports no model library: each algorithm loads its own on ``fit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from modelyard.errors import InvalidInput
from modelyard.training.algorithms.base import Algorithm, Progress, TrainedModel
from modelyard.training.algorithms.kmeans import KMeansAlgorithm
from modelyard.training.algorithms.lightgbm_algorithm import LightGBMAlgorithm
from modelyard.training.algorithms.linear_learner import LinearLearner
from modelyard.training.algorithms.random_forest import RandomForest
from modelyard.training.algorithms.text_classifier import TextClassifier
from modelyard.training.algorithms.xgboost_algorithm import XGBoostAlgorithm

__all__ = ["ALGORITHMS", "Algorithm", "Progress", "TrainedModel", "get_algorithm"]

ALGORITHMS: Mapping[str, type[Algorithm]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            XGBoostAlgorithm,
            LightGBMAlgorithm,
            LinearLearner,
            KMeansAlgorithm,
            RandomForest,
            TextClassifier,
        )
    }
)


def get_algorithm(name: str) -> Algorithm:
    """A new instance of the built-in algorithm called ``name``.

    Raises:
        InvalidInput: no algorithm has that name; the message lists those that do.
    """
    cls = ALGORITHMS.get(name)
    if cls is None:
        raise InvalidInput(
            f"unknown algorithm {name!r}; built-in algorithms: {', '.join(sorted(ALGORITHMS))}"
        )
    return cls()
