"""SageMaker's Linear Learner, on scikit-learn: standardised features, then a logistic
regression (classification) or a ridge / lasso regression.

``penalty`` l2 uses lbfgs (classification) or Ridge; l1 uses liblinear (binary), saga
(multiclass) or Lasso. The result is a ``Pipeline(StandardScaler, model)``, registered with the
``sklearn`` flavor; classifiers predict the original labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.training.algorithms._metrics import evaluate
from modelyard.training.algorithms._prepare import (
    Task,
    example_rows,
    numeric_features,
    refuse_missing,
    same_columns,
    target_of,
)
from modelyard.training.algorithms._sklearn import (
    PREDICTOR_TYPE,
    convergence_warnings,
    resolve_task,
    skops_trusted_types,
)
from modelyard.training.algorithms.base import Algorithm, Progress, TrainedModel, hp_table
from modelyard.training.hyperparameters import Hyperparameter

if TYPE_CHECKING:
    from modelyard.training.data import Dataset

_MAX_SEED = 2**31 - 1


class LinearLearner(Algorithm):
    """Linear models with standardised inputs: logistic, ridge or lasso regression."""

    name = "linear-learner"
    flavor = "sklearn"
    hyperparameters = hp_table(
        PREDICTOR_TYPE,
        Hyperparameter("penalty", "choice", "l2", choices=("l2", "l1"), help="regularisation"),
        Hyperparameter(
            "C", "float", 1.0, 0, 1e6, low_open=True, help="inverse regularisation (classifiers)"
        ),
        Hyperparameter("alpha", "float", 1.0, 0, 1e6, help="regularisation (regressors)"),
        Hyperparameter("max_iter", "int", 1000, 1, 1_000_000, help="solver iterations"),
        Hyperparameter("tol", "float", 1e-4, 0, 1, low_open=True, help="stopping tolerance"),
        Hyperparameter("seed", "int", 0, 0, _MAX_SEED, help="random seed (saga, liblinear)"),
    )

    def fit(
        self,
        train: Dataset,
        validation: Dataset | None,
        hp: Mapping[str, Any],
        progress: Progress | None = None,
    ) -> TrainedModel:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        hp = self.validate(hp)
        features = numeric_features(train, self.name, "train")
        refuse_missing(features, self.name, "train")
        target = target_of(train, self.name, "train")
        task = resolve_task(hp["predictor_type"], target, self.name)
        channels = [("train", features, target)]
        if validation is not None:
            valid_features = numeric_features(validation, self.name, "validation")
            same_columns(features, valid_features)
            refuse_missing(valid_features, self.name, "validation")
            channels.append(
                ("validation", valid_features, target_of(validation, self.name, "validation"))
            )

        pipeline = Pipeline([("scale", StandardScaler()), ("model", self._model(hp, task))])
        with convergence_warnings() as caught:
            pipeline.fit(features, target if task.classifier else target.astype("float64"))
        metrics: dict[str, float] = {}
        for channel, x, y in channels:
            metrics.update(evaluate(pipeline, task, channel, x, y))
        if progress is not None:
            progress(1, 1, metrics)
        return TrainedModel(
            model=pipeline,
            flavor=self.flavor,
            metrics=metrics,
            input_example=example_rows(features),
            trusted_types=skops_trusted_types(pipeline),
            warnings=tuple(caught),
        )

    @staticmethod
    def _model(hp: Mapping[str, Any], task: Task) -> Any:
        if task is Task.REGRESSION:
            if hp["penalty"] == "l1":
                from sklearn.linear_model import Lasso

                return Lasso(
                    alpha=hp["alpha"],
                    max_iter=hp["max_iter"],
                    tol=hp["tol"],
                    random_state=hp["seed"],
                )
            from sklearn.linear_model import Ridge

            return Ridge(alpha=hp["alpha"], max_iter=hp["max_iter"], tol=hp["tol"])
        from sklearn.linear_model import LogisticRegression

        if hp["penalty"] == "l1":
            solver = "liblinear" if task is Task.BINARY else "saga"
            l1_ratio = 1.0
        else:
            solver, l1_ratio = "lbfgs", 0.0
        return LogisticRegression(
            C=hp["C"],
            l1_ratio=l1_ratio,
            solver=solver,
            max_iter=hp["max_iter"],
            tol=hp["tol"],
            random_state=hp["seed"],
        )
