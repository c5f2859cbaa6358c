"""Random forests on scikit-learn: RandomForestClassifier or RandomForestRegressor.

Missing feature values are allowed (scikit-learn's trees route them). The fitted forest is
registered with the ``sklearn`` flavor; skops needs its tree type trusted, which
``TrainedModel.trusted_types`` lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.training.algorithms._metrics import evaluate
from modelyard.training.algorithms._prepare import (
    Task,
    example_rows,
    numeric_features,
    same_columns,
    target_of,
)
from modelyard.training.algorithms._sklearn import (
    PREDICTOR_TYPE,
    resolve_task,
    skops_trusted_types,
)
from modelyard.training.algorithms.base import Algorithm, Progress, TrainedModel, hp_table
from modelyard.training.hyperparameters import Hyperparameter

if TYPE_CHECKING:
    from modelyard.training.data import Dataset

_MAX_SEED = 2**31 - 1
_MAX_FEATURES = {"sqrt": "sqrt", "log2": "log2", "all": None}


class RandomForest(Algorithm):
    """A forest of randomised decision trees, averaged."""

    name = "random-forest"
    flavor = "sklearn"
    hyperparameters = hp_table(
        PREDICTOR_TYPE,
        Hyperparameter("n_estimators", "int", 100, 1, 10_000, help="trees"),
        Hyperparameter("max_depth", "int", None, 1, 1000, help="tree depth; unlimited if unset"),
        Hyperparameter("min_samples_leaf", "int", 1, 1, None, help="min rows per leaf"),
        Hyperparameter(
            "max_features",
            "choice",
            None,
            choices=tuple(_MAX_FEATURES),
            help="features tried per split; sqrt (classifiers) or all (regressors) if unset",
        ),
        Hyperparameter("seed", "int", 0, 0, _MAX_SEED, help="random seed"),
        Hyperparameter("n_jobs", "int", 1, 1, 1024, help="parallel jobs"),
    )

    def fit(
        self,
        train: Dataset,
        validation: Dataset | None,
        hp: Mapping[str, Any],
        progress: Progress | None = None,
    ) -> TrainedModel:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        hp = self.validate(hp)
        features = numeric_features(train, self.name, "train")
        target = target_of(train, self.name, "train")
        task = resolve_task(hp["predictor_type"], target, self.name)
        channels = [("train", features, target)]
        if validation is not None:
            valid_features = numeric_features(validation, self.name, "validation")
            same_columns(features, valid_features)
            channels.append(
                ("validation", valid_features, target_of(validation, self.name, "validation"))
            )

        if task is Task.REGRESSION:
            forest_class: Any = RandomForestRegressor
            max_features = _MAX_FEATURES[hp["max_features"] or "all"]
            target = target.astype("float64")
        else:
            forest_class = RandomForestClassifier
            max_features = _MAX_FEATURES[hp["max_features"] or "sqrt"]
        forest = forest_class(
            n_estimators=hp["n_estimators"],
            max_depth=hp["max_depth"],
            min_samples_leaf=hp["min_samples_leaf"],
            max_features=max_features if max_features is not None else 1.0,
            random_state=hp["seed"],
            n_jobs=hp["n_jobs"],
        )
        forest.fit(features, target)
        metrics: dict[str, float] = {}
        for channel, x, y in channels:
            metrics.update(evaluate(forest, task, channel, x, y))
        if progress is not None:
            progress(1, 1, metrics)
        return TrainedModel(
            model=forest,
            flavor=self.flavor,
            metrics=metrics,
            input_example=example_rows(features),
            trusted_types=skops_trusted_types(forest),
        )
