"""SageMaker's k-means, on scikit-learn's KMeans: ``k`` clusters of the numeric features.

A target column, when the data has one, is ignored. Metrics are the mean squared distance of
the rows to their nearest centre (``train:msd``, ``validation:msd``), SageMaker's ``msd``.
The fitted ``KMeans`` is registered with the ``sklearn`` flavor; it predicts cluster indices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.training.algorithms._prepare import (
    example_rows,
    numeric_features,
    refuse_missing,
    same_columns,
)
from modelyard.training.algorithms._sklearn import (
    convergence_warnings,
    require_rows,
    skops_trusted_types,
)
from modelyard.training.algorithms.base import Algorithm, Progress, TrainedModel, hp_table
from modelyard.training.hyperparameters import Hyperparameter

if TYPE_CHECKING:
    from modelyard.training.data import Dataset

_MAX_SEED = 2**31 - 1


class KMeansAlgorithm(Algorithm):
    """Clustering with k-means (Lloyd's algorithm, k-means++ or random initial centres)."""

    name = "kmeans"
    flavor = "sklearn"
    supervised = False
    hyperparameters = hp_table(
        Hyperparameter("k", "int", 8, 1, 100_000, help="number of clusters"),
        Hyperparameter(
            "init", "choice", "k-means++", choices=("k-means++", "random"), help="initial centres"
        ),
        Hyperparameter("n_init", "int", 1, 1, 1000, help="runs with different centres; best kept"),
        Hyperparameter("max_iter", "int", 300, 1, 1_000_000, help="iterations per run"),
        Hyperparameter("tol", "float", 1e-4, 0, 1, help="convergence tolerance"),
        Hyperparameter("seed", "int", 0, 0, _MAX_SEED, help="random seed"),
    )

    def fit(
        self,
        train: Dataset,
        validation: Dataset | None,
        hp: Mapping[str, Any],
        progress: Progress | None = None,
    ) -> TrainedModel:
        from sklearn.cluster import KMeans

        hp = self.validate(hp)
        features = numeric_features(train, self.name, "train")
        refuse_missing(features, self.name, "train")
        require_rows(len(features), hp["k"], self.name, f"for k={hp['k']} clusters")
        valid_features = None
        if validation is not None:
            valid_features = numeric_features(validation, self.name, "validation")
            same_columns(features, valid_features)
            refuse_missing(valid_features, self.name, "validation")
        model = KMeans(
            n_clusters=hp["k"],
            init=hp["init"],
            n_init=hp["n_init"],
            max_iter=hp["max_iter"],
            tol=hp["tol"],
            random_state=hp["seed"],
        )
        with convergence_warnings() as caught:
            model.fit(features)
        metrics = {"train:msd": float(model.inertia_) / len(features)}
        if valid_features is not None:
            metrics["validation:msd"] = -float(model.score(valid_features)) / len(valid_features)
        if progress is not None:
            progress(1, 1, metrics)
        return TrainedModel(
            model=model,
            flavor=self.flavor,
            metrics=metrics,
            input_example=example_rows(features),
            trusted_types=skops_trusted_types(model),
            warnings=tuple(caught),
        )
