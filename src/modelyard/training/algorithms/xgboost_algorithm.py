"""SageMaker's built-in XGBoost: gradient-boosted trees for classification and regression.

The objective is inferred from the target when not given: ``binary:logistic`` for two
classes, ``multi:softprob`` for more, ``reg:squarederror`` for a continuous number. Class
labels are encoded as 0..k-1 (``TrainedModel.classes`` keeps the mapping). The result is an
``xgboost.Booster``, registered with the ``xgboost`` flavor.
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
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "multi:softprob",
    "multi:softmax",
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "reg:logistic",
    "reg:gamma",
    "reg:tweedie",
    "count:poisson",
)
DEFAULT_OBJECTIVE = {
    Task.BINARY: "binary:logistic",
    Task.MULTICLASS: "multi:softprob",
    Task.REGRESSION: "reg:squarederror",
}
DEFAULT_METRICS = {
    Task.BINARY: ("auc", "logloss"),
    Task.MULTICLASS: ("mlogloss", "merror"),
    Task.REGRESSION: ("rmse",),
}
_MAX_SEED = 2**31 - 1


def task_of_objective(objective: str) -> Task:
    """The task an XGBoost objective solves."""
    if objective.startswith("binary:"):
        return Task.BINARY
    if objective.startswith("multi:"):
        return Task.MULTICLASS
    return Task.REGRESSION


def metrics_at(evals_log: Mapping[str, Mapping[str, Any]], index: int) -> dict[str, float]:
    """``{"train:auc": …, "validation:auc": …}`` at round ``index`` of an XGBoost eval log."""
    return {
        f"{data}:{metric}": float(values[index])
        for data, by_metric in evals_log.items()
        for metric, values in by_metric.items()
    }


def _recorder(xgb: Any, total: int, progress: Progress | None) -> Any:
    """A TrainingCallback that keeps each round's metrics and reports them to ``progress``.

    Built on first use so that importing this module does not import xgboost.
    """

    class Recorder(xgb.callback.TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.history: list[dict[str, float]] = []

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            metrics = metrics_at(evals_log, -1)
            self.history.append(metrics)
            if progress is not None:
                progress(epoch + 1, total, metrics)
            return False  # never asks to stop; early stopping is XGBoost's own callback

    return Recorder()


class XGBoostAlgorithm(Algorithm):
    """Gradient-boosted trees (``xgboost.train``), evaluated on train and validation."""

    name = "xgboost"
    rounds_hyperparameter = "num_round"
    flavor = "xgboost"
    hyperparameters = hp_table(
        Hyperparameter("num_round", "int", 100, 1, 10_000, help="boosting rounds"),
        Hyperparameter("max_depth", "int", 6, 0, 64, help="tree depth (0: no limit)"),
        Hyperparameter("eta", "float", 0.3, 0, 1, help="learning rate"),
        Hyperparameter("subsample", "float", 1.0, 0, 1, low_open=True, help="row sampling"),
        Hyperparameter(
            "colsample_bytree", "float", 1.0, 0, 1, low_open=True, help="column sampling"
        ),
        Hyperparameter("min_child_weight", "float", 1.0, 0, None, help="min hessian per leaf"),
        Hyperparameter("gamma", "float", 0.0, 0, None, help="min loss reduction to split"),
        Hyperparameter("lambda", "float", 1.0, 0, None, help="L2 regularisation"),
        Hyperparameter("alpha", "float", 0.0, 0, None, help="L1 regularisation"),
        Hyperparameter(
            "objective", "choice", None, choices=OBJECTIVES, help="inferred when not set"
        ),
        Hyperparameter("num_class", "int", None, 2, 10_000, help="classes (multi:*); inferred"),
        Hyperparameter(
            "eval_metric", "str", None, help="comma-separated XGBoost metrics; by task if unset"
        ),
        Hyperparameter(
            "early_stopping_rounds",
            "int",
            None,
            1,
            10_000,
            help="stop when the validation metric has not improved for this many rounds",
        ),
        Hyperparameter("seed", "int", 0, 0, _MAX_SEED, help="random seed"),
        Hyperparameter("nthread", "int", 1, 1, 1024, help="threads"),
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
            import xgboost as xgb
        except ImportError as exc:
            raise MissingDependency(
                f"xgboost is not installed ({exc}): pip install xgboost"
            ) from exc
        try:
            dtrain = xgb.DMatrix(features, label=labels, nthread=hp["nthread"])
            evals = [(dtrain, "train")]
            if inputs.valid_features is not None:
                evals.append(
                    (
                        xgb.DMatrix(
                            inputs.valid_features, label=inputs.valid_labels, nthread=hp["nthread"]
                        ),
                        "validation",
                    )
                )
            recorder = _recorder(xgb, hp["num_round"], progress)
            booster = xgb.train(
                params,
                dtrain,
                num_boost_round=hp["num_round"],
                evals=evals,
                early_stopping_rounds=hp["early_stopping_rounds"],
                callbacks=[recorder],
                verbose_eval=False,
            )
        except (xgb.core.XGBoostError, ValueError) as exc:
            raise InvalidInput(f"xgboost refused the data or hyperparameters: {exc}") from exc

        history: list[dict[str, float]] = recorder.history
        rounds = booster.num_boosted_rounds()
        best = getattr(booster, "best_iteration", None)
        if hp["early_stopping_rounds"] is not None and best is not None and best + 1 < rounds:
            booster = booster[: best + 1]  # the registered model is the best one
            rounds = best + 1
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
        objective = hp["objective"] or DEFAULT_OBJECTIVE[task]
        metrics = (
            [m.strip() for m in hp["eval_metric"].split(",") if m.strip()]
            if hp["eval_metric"]
            else list(DEFAULT_METRICS[task])
        )
        params: dict[str, Any] = {
            "objective": objective,
            "max_depth": hp["max_depth"],
            "eta": hp["eta"],
            "subsample": hp["subsample"],
            "colsample_bytree": hp["colsample_bytree"],
            "min_child_weight": hp["min_child_weight"],
            "gamma": hp["gamma"],
            "lambda": hp["lambda"],
            "alpha": hp["alpha"],
            "eval_metric": metrics,
            "seed": hp["seed"],
            "nthread": hp["nthread"],
            "verbosity": 0,
        }
        if task is Task.MULTICLASS:
            if hp["num_class"] is not None and hp["num_class"] != len(classes):
                raise InvalidInput(
                    f"num_class is {hp['num_class']} but the target has {len(classes)} classes "
                    f"({', '.join(str(c) for c in classes)})"
                )
            params["num_class"] = len(classes)
        return params
