"""LightGBM gradient boosting for classification and regression.

The objective is inferred from the target when not given (``binary``, ``multiclass``,
``regression``); class labels are encoded as 0..k-1 (``TrainedModel.classes``). The result is
a ``lightgbm.Booster``, registered with the ``lightgbm`` flavor; under early stopping it holds
only the rounds up to the best one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput, MissingDependency
from modelyard.training.algorithms._prepare import Task, example_rows, supervised_inputs
from modelyard.training.algorithms.base import Algorithm, Progress, TrainedModel, hp_table
from modelyard.training.hyperparameters import Hyperparameter

if TYPE_CHECKING:
    from modelyard.training.data import Dataset

OBJECTIVES = (
    "binary",
    "multiclass",
    "multiclassova",
    "regression",
    "regression_l1",
    "huber",
    "fair",
    "poisson",
    "quantile",
    "mape",
    "gamma",
    "tweedie",
)
DEFAULT_OBJECTIVE = {
    Task.BINARY: "binary",
    Task.MULTICLASS: "multiclass",
    Task.REGRESSION: "regression",
}
DEFAULT_METRICS = {
    Task.BINARY: ("binary_logloss", "auc"),
    Task.MULTICLASS: ("multi_logloss", "multi_error"),
    Task.REGRESSION: ("rmse",),
}
_MAX_SEED = 2**31 - 1


def task_of_objective(objective: str) -> Task:
    """The task a LightGBM objective solves."""
    if objective == "binary":
        return Task.BINARY
    if objective.startswith("multiclass"):
        return Task.MULTICLASS
    return Task.REGRESSION


class LightGBMAlgorithm(Algorithm):
    """Gradient-boosted trees (``lightgbm.train``), evaluated on train and validation."""

    name = "lightgbm"
    rounds_hyperparameter = "num_round"
    flavor = "lightgbm"
    hyperparameters = hp_table(
        Hyperparameter("num_round", "int", 100, 1, 10_000, help="boosting rounds"),
        Hyperparameter("num_leaves", "int", 31, 2, 131_072, help="leaves per tree"),
        Hyperparameter("max_depth", "int", -1, -1, 64, help="tree depth (-1: no limit)"),
        Hyperparameter("learning_rate", "float", 0.1, 0, 1, low_open=True, help="shrinkage"),
        Hyperparameter(
            "feature_fraction", "float", 1.0, 0, 1, low_open=True, help="column sampling"
        ),
        Hyperparameter("bagging_fraction", "float", 1.0, 0, 1, low_open=True, help="row sampling"),
        Hyperparameter(
            "bagging_freq", "int", 0, 0, 10_000, help="bag every k rounds (1 if unset and sampling)"
        ),
        Hyperparameter("min_data_in_leaf", "int", 20, 1, None, help="min rows per leaf"),
        Hyperparameter("lambda_l1", "float", 0.0, 0, None, help="L1 regularisation"),
        Hyperparameter("lambda_l2", "float", 0.0, 0, None, help="L2 regularisation"),
        Hyperparameter(
            "objective", "choice", None, choices=OBJECTIVES, help="inferred when not set"
        ),
        Hyperparameter(
            "metric", "str", None, help="comma-separated LightGBM metrics; by task if unset"
        ),
        Hyperparameter(
            "early_stopping_rounds",
            "int",
            None,
            1,
            10_000,
            help="stop when the first validation metric has not improved for this many rounds",
        ),
        Hyperparameter("seed", "int", 0, 0, _MAX_SEED, help="random seed"),
        Hyperparameter("num_threads", "int", 1, 1, 1024, help="threads"),
    )

    def fit(
        self,
        train: Dataset,
        validation: Dataset | None,
        hp: Mapping[str, Any],
        progress: Progress | None = None,
    ) -> TrainedModel:
        hp = self.validate(hp)
        given = task_of_objective(hp["objective"]) if hp["objective"] else None
        inputs = supervised_inputs(
            train,
            validation,
            self.name,
            given,
            early_stopping=hp["early_stopping_rounds"] is not None,
        )
        task, features, labels, classes = (
            inputs.task,
            inputs.features,
            inputs.labels,
            inputs.classes,
        )
        params = self._params(hp, task, classes)

        try:
            import lightgbm as lgb
        except ImportError as exc:
            raise MissingDependency(
                f"lightgbm is not installed ({exc}): pip install lightgbm"
            ) from exc
        dtrain = lgb.Dataset(features, label=labels)
        valid_sets, valid_names = [dtrain], ["train"]
        if inputs.valid_features is not None:
            valid_sets.append(
                lgb.Dataset(inputs.valid_features, label=inputs.valid_labels, reference=dtrain)
            )
            valid_names.append("validation")

        total = hp["num_round"]
        history: list[dict[str, float]] = []

        def record(env: Any) -> None:
            metrics = {
                f"{result[0]}:{result[1]}": float(result[2])
                for result in env.evaluation_result_list or ()
            }
            history.append(metrics)
            if progress is not None:
                progress(env.iteration + 1, total, metrics)

        record.order = 10  # type: ignore[attr-defined]  # before early stopping (30) ends a run
        callbacks: list[Any] = [record]
        if hp["early_stopping_rounds"] is not None:
            callbacks.append(
                lgb.early_stopping(
                    hp["early_stopping_rounds"], first_metric_only=True, verbose=False
                )
            )
        try:
            booster = lgb.train(
                params,
                dtrain,
                num_boost_round=total,
                valid_sets=valid_sets,
                valid_names=valid_names,
                callbacks=callbacks,
            )
        except lgb.basic.LightGBMError as exc:
            raise InvalidInput(f"lightgbm refused the data or hyperparameters: {exc}") from exc
        # lgb.train keeps only the rounds up to the best one when early stopping ended it.
        rounds = booster.current_iteration()
        return TrainedModel(
            model=booster,
            flavor=self.flavor,
            metrics=dict(history[rounds - 1]) if history else {},
            input_example=example_rows(features),
            rounds=rounds,
            history=tuple(history),
            classes=classes,
        )

    def _params(
        self, hp: Mapping[str, Any], task: Task, classes: tuple[Any, ...]
    ) -> dict[str, Any]:
        metrics = (
            [m.strip() for m in hp["metric"].split(",") if m.strip()]
            if hp["metric"]
            else list(DEFAULT_METRICS[task])
        )
        bagging_freq = hp["bagging_freq"]
        if bagging_freq == 0 and hp["bagging_fraction"] < 1:
            bagging_freq = 1  # LightGBM ignores bagging_fraction without a frequency
        params: dict[str, Any] = {
            "objective": hp["objective"] or DEFAULT_OBJECTIVE[task],
            "metric": metrics,
            "num_leaves": hp["num_leaves"],
            "max_depth": hp["max_depth"],
            "learning_rate": hp["learning_rate"],
            "feature_fraction": hp["feature_fraction"],
            "bagging_fraction": hp["bagging_fraction"],
            "bagging_freq": bagging_freq,
            "min_data_in_leaf": hp["min_data_in_leaf"],
            "lambda_l1": hp["lambda_l1"],
            "lambda_l2": hp["lambda_l2"],
            "seed": hp["seed"],
            "num_threads": hp["num_threads"],
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }
        if task is Task.MULTICLASS:
            params["num_class"] = len(classes)
        return params
