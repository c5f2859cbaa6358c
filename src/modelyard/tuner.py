"""``HyperparameterTuner``: tuning jobs from Python, in the manner of the SageMaker SDK.

    from modelyard import Estimator, HyperparameterTuner, IntegerParameter, ContinuousParameter
    est = Estimator("xgboost", model_name="churn", hyperparameters={"num_round": 200})
    tuner = HyperparameterTuner(
        est,
        objective_metric_name="validation:auc",
        hyperparameter_ranges={
            "max_depth": IntegerParameter(3, 10),
            "eta": ContinuousParameter(0.01, 0.3, scaling_type="Logarithmic"),
        },
        max_jobs=30,
        max_parallel_jobs=2,
    )
    tuner.fit(train="data/train.csv", validation="data/val.csv")
    tuner.best_hyperparameters_, tuner.model_version_

A thin adapter over ``TuningService``: the tuning job runs in worker processes exactly as
``modelyard tune`` runs it; ``fit`` waits for it and returns ``self``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelyard.domain import Job, JobStatus, ModelVersion, Trust
from modelyard.errors import InvalidInput
from modelyard.estimator import (
    Data,
    Estimator,
    Inputs,
    MetricDefinitions,
    channels,
    metric_definition_texts,
    params_of,
    platform_of,
    sdk_hyperparameters,
    sdk_json,
)

if TYPE_CHECKING:
    from modelyard.bootstrap import Platform
    from modelyard.data_capture import DataCaptureConfig
    from modelyard.predictor import Predictor
    from modelyard.serializers import BaseDeserializer, BaseSerializer
    from modelyard.services.tuning import TuningSummary

Scaling = Literal["Auto", "Linear", "Logarithmic"]


def _bound(name: str, field: str, value: object, *, whole: bool = False) -> str:
    """A range's bound as the range string takes it.

    Raises:
        InvalidInput: not a finite number (a bool is not one), or not whole when ``whole``;
            the message names the hyperparameter and the argument.
    """
    what = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(
            f"the range of {name!r}: {field} must be {what}, got {type(value).__name__} {value!r}"
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or (whole and not number.is_integer()):
        raise InvalidInput(f"the range of {name!r}: {field} must be finite {what}, got {value!r}")
    return str(int(number)) if number.is_integer() else repr(number)


def _log(scaling_type: str) -> str:
    """``:log`` for SageMaker's ``Logarithmic``; ``Auto`` and ``Linear`` sample linearly.

    Raises:
        InvalidInput: any other scaling type (``ReverseLogarithmic`` is not supported).
    """
    if scaling_type not in ("Auto", "Linear", "Logarithmic"):
        raise InvalidInput(
            f"scaling_type must be 'Auto', 'Linear' or 'Logarithmic', got {scaling_type!r}"
        )
    return ":log" if scaling_type == "Logarithmic" else ""


@dataclass(frozen=True)
class IntegerParameter:
    """Integers from ``min_value`` to ``max_value`` (inclusive)."""

    min_value: int
    max_value: int
    scaling_type: Scaling = "Auto"

    def as_range(self, name: str) -> str:
        low = _bound(name, "min_value", self.min_value, whole=True)
        high = _bound(name, "max_value", self.max_value, whole=True)
        return f"{name}=int:{low}:{high}{_log(self.scaling_type)}"


@dataclass(frozen=True)
class ContinuousParameter:
    """Numbers from ``min_value`` to ``max_value``; ``Logarithmic`` samples log-uniformly."""

    min_value: float
    max_value: float
    scaling_type: Scaling = "Auto"

    def as_range(self, name: str) -> str:
        low = _bound(name, "min_value", self.min_value)
        high = _bound(name, "max_value", self.max_value)
        return f"{name}=float:{low}:{high}{_log(self.scaling_type)}"


@dataclass(frozen=True)
class CategoricalParameter:
    """One of ``values`` (a single value is allowed, as in the SageMaker SDK)."""

    values: tuple[Any, ...] | list[Any] | str | int | float

    def as_range(self, name: str) -> str:
        values = self.values if isinstance(self.values, list | tuple) else [self.values]
        return _choices(name, [str(v) for v in values])

    def as_json_range(self, name: str) -> str:
        """The range with each value JSON-encoded, strings too, as the SageMaker SDK sends a
        script-mode (Framework) estimator's categorical values, so the script reads back the
        string ``"123"`` and the boolean ``False``, not ``123`` and the text ``False``."""
        values = self.values if isinstance(self.values, list | tuple) else [self.values]
        return _choices(name, [sdk_json(v) for v in values])


def _choices(name: str, texts: list[str]) -> str:
    if any("," in t for t in texts):
        raise InvalidInput(f"a categorical value of {name!r} holds a comma: {texts}")
    return f"{name}=cat:{','.join(texts)}"


Parameter = IntegerParameter | ContinuousParameter | CategoricalParameter
_STRATEGIES = {"bayesian": "bayesian", "random": "random", "grid": "grid", "hyperband": "hyperband"}


class HyperparameterTuner:
    """A tuning request over an :class:`Estimator`; ``fit`` runs it as a tuning job.

    ``metric_definitions`` (``NAME=REGEX`` strings or the SageMaker SDK's
    ``{"Name": ..., "Regex": ...}`` dicts), when given, replace the estimator's for the trials.

    Defaults are the SageMaker SDK's: ``max_jobs`` None runs one training job (a ``Grid``: one
    per point of its grid), and ``objective_type`` None maximizes, except an objective whose
    name says smaller is better (``loss``, ``error``, ``rmse``, ``mae``, ``mse``...), which is
    minimized (the SDK would maximize it; say ``objective_type="Maximize"`` to).

    Learned attributes (set by ``fit``): ``job_``, ``best_training_job_``,
    ``best_hyperparameters_``, ``best_value_``, ``model_version_``, ``trials_`` (a list of
    dicts: name, state, value, hyperparameters).
    """

    def __init__(
        self,
        estimator: Estimator,
        objective_metric_name: str,
        hyperparameter_ranges: dict[str, Parameter | str],
        metric_definitions: MetricDefinitions | None = None,
        *,
        objective_type: Literal["Maximize", "Minimize"] | None = None,
        strategy: str = "Bayesian",
        max_jobs: int | None = None,
        max_parallel_jobs: int = 1,
        early_stopping_type: Literal["Off", "Auto"] = "Off",
        max_failed_jobs: int | None = None,
        warm_start: str | None = None,
        random_seed: int | None = None,
    ) -> None:
        self.estimator = estimator
        self.objective_metric_name = objective_metric_name
        self.hyperparameter_ranges = hyperparameter_ranges
        self.metric_definitions = metric_definitions
        self.objective_type = objective_type
        self.strategy = strategy
        self.max_jobs = max_jobs
        self.max_parallel_jobs = max_parallel_jobs
        self.early_stopping_type = early_stopping_type
        self.max_failed_jobs = max_failed_jobs
        self.warm_start = warm_start
        self.random_seed = random_seed

    def _ranges(self) -> list[str]:
        """The ranges as the service takes them.

        Raises:
            InvalidInput: not the SDK's dict of name to parameter, or a value that is neither
                a parameter nor a range string; naming it.
        """
        given: object = self.hyperparameter_ranges
        if not isinstance(given, Mapping):
            raise InvalidInput(
                "hyperparameter_ranges must be a dict of hyperparameter name to parameter "
                f"({{'eta': ContinuousParameter(0.01, 0.3)}}), got {type(given).__name__}"
            )
        texts = []
        for name, spec in given.items():
            if isinstance(spec, str):
                texts.append(spec)
            elif isinstance(spec, CategoricalParameter) and self.estimator.script is not None:
                texts.append(spec.as_json_range(str(name)))
            elif isinstance(spec, IntegerParameter | ContinuousParameter | CategoricalParameter):
                texts.append(spec.as_range(str(name)))
            else:
                raise InvalidInput(
                    f"the range of {name!r} must be a parameter range (IntegerParameter, "
                    f"ContinuousParameter or CategoricalParameter), got "
                    f"{type(spec).__name__} {spec!r}"
                )
        return texts

    def _platform(self) -> Platform:
        return self.estimator._get_platform()

    def fit(
        self,
        train: Inputs | None = None,
        validation: Data | None = None,
        *,
        inputs: Inputs | None = None,
        job_name: str | None = None,
        wait: bool = True,
    ) -> HyperparameterTuner:
        """Submit the tuning job on ``train`` (and ``validation``) and, by default, wait.

        ``train`` (or ``inputs``, the SageMaker SDK's name) is the training data, or the
        SDK's dict of channels: ``fit({"train": ..., "validation": ...})``. As in the SDK,
        ``job_name`` names the tuning job (default: the model's name, ``tune``, a timestamp
        and a random suffix); its trials are named after it.

        Raises:
            InvalidInput (bad request, nothing submitted); AlreadyExists (a job has that
            name); JobFailed when the job fails.
        """
        train, validation = channels(train, validation, inputs)
        given: object = self.strategy
        strategy = _STRATEGIES.get(given.lower()) if isinstance(given, str) else None
        if strategy is None:
            raise InvalidInput(
                f"unknown strategy {self.strategy!r}; choose Bayesian, Random, Grid or Hyperband"
            )
        if self.early_stopping_type not in ("Off", "Auto"):
            raise InvalidInput("early_stopping_type must be 'Off' or 'Auto'")
        if self.objective_type not in (None, "Maximize", "Minimize"):
            raise InvalidInput("objective_type must be 'Maximize' or 'Minimize'")
        est = self.estimator
        platform = self._platform()
        job = platform.tuning.submit(
            est.model_name or est.algorithm or "model",
            train=train,
            validation=validation,
            objective=self.objective_metric_name,
            ranges=self._ranges(),
            algorithm=est.algorithm,
            script=est.script,
            target=est.target,
            maximize=None if self.objective_type is None else self.objective_type == "Maximize",
            default_maximize=True,  # the SDK's Maximize when neither the type nor the name says
            hyperparameters=sdk_hyperparameters(est.hyperparameters, est.script),
            strategy=strategy,
            max_trials=self.max_jobs,  # the SDK's default (None): one job, a grid every point
            parallel=self.max_parallel_jobs,
            early_stopping=self.early_stopping_type == "Auto",
            max_failed_trials=self.max_failed_jobs,
            warm_start=self.warm_start,
            seed=self.random_seed,
            flavor=est.flavor,
            metric_definitions=metric_definition_texts(
                est.metric_definitions
                if self.metric_definitions is None
                else self.metric_definitions
            ),
            aliases=est.aliases,
            trust=Trust(pickle=est.trust_pickle, user_code=est.trust_code),
            job_name=job_name,
        )
        if wait:
            job = platform.tuning.wait(job.name)
        self._learn(job)
        return self

    @classmethod
    def attach(
        cls,
        tuning_job_name: str,
        sagemaker_session: Platform | None = None,
        job_details: dict[str, Any] | None = None,
        estimator_cls: str | None = None,
    ) -> HyperparameterTuner:
        """A tuner for an existing tuning job, as the SageMaker SDK's
        ``HyperparameterTuner.attach``: its estimator, objective, ranges, strategy and limits
        are the job's. A job that completed gives its learned attributes at once (the best
        trial, its model version); for one still running, ``wait()`` waits and learns them.

        Args:
            tuning_job_name: The tuning job's name.
            sagemaker_session: The modelyard :class:`~modelyard.bootstrap.Platform` to use
                (default: built from the settings).
            job_details, estimator_cls: Taken with a warning and not used: the job's record is
                read from the store, and its estimator is an :class:`Estimator`.

        Raises:
            JobNotFound: no job has that name. InvalidInput: it is not a tuning job.
        """
        for name, given in (("job_details", job_details), ("estimator_cls", estimator_cls)):
            if given is not None:
                warnings.warn(
                    f"{name} is not used: the tuning job is read from modelyard's store",
                    UserWarning,
                    stacklevel=2,
                )
        estimator = Estimator(platform=platform_of(sagemaker_session))
        job = estimator._get_platform().tuning.get(tuning_job_name)
        estimator.set_params(**params_of(job))
        config = job.spec["tuning"]
        tuner = cls(
            estimator,
            config["objective"],
            {text.split("=", 1)[0]: text for text in config["ranges"]},
            objective_type="Maximize" if config["maximize"] else "Minimize",
            strategy=config["strategy"].capitalize(),
            max_jobs=config["max_trials"],
            max_parallel_jobs=config["parallel"],
            early_stopping_type="Auto" if config["early_stopping"] else "Off",
            max_failed_jobs=config["max_failed_trials"],
            warm_start=config.get("warm_start"),
            random_seed=config["seed"],
        )
        tuner.job_ = job
        if job.status is JobStatus.COMPLETED:
            tuner._learn(job)
        return tuner

    def wait(self) -> HyperparameterTuner:
        """Wait for the tuning job that ``fit(wait=False)`` or ``attach`` gave the tuner to
        end, then set its learned attributes (the SDK's ``HyperparameterTuner.wait``).

        Raises:
            ValueError: no tuning job yet. JobFailed: the job failed or was stopped.
        """
        self._learn(self._platform().tuning.wait(self._latest().name))
        return self

    def _latest(self) -> Job:
        job: Job | None = getattr(self, "job_", None)
        if job is None:
            raise ValueError("no tuning job yet: fit() or attach() first")
        return job

    def _learn(self, job: Job) -> None:
        self.job_ = job
        from modelyard.services.jobs import failure_of

        failed = failure_of(job)
        if failed is not None:
            raise failed
        summary: TuningSummary = self._platform().tuning.summary(job.name)
        best = summary.best
        self.best_training_job_ = best.name if best else None
        self.best_hyperparameters_ = dict(best.job.hyperparameters) if best else {}
        self.best_value_ = best.value if best else None
        self.trials_ = [
            {
                "name": t.name,
                "state": t.state,
                "value": t.value,
                "hyperparameters": dict(t.job.hyperparameters),
            }
            for t in summary.trials
        ]
        version: ModelVersion | None = self._platform().training.registered_version(job)
        self.model_version_ = version

    def best_training_job(self) -> str:
        """The name of the tuning job's best trial so far, as the SageMaker SDK's
        ``HyperparameterTuner.best_training_job`` (read from the store, so a running job's
        too).

        Raises:
            ValueError: no tuning job yet (``fit`` or ``attach`` first), or no trial of it
                has completed yet.
        """
        name = self._latest().name
        best = self._platform().tuning.summary(name).best
        if best is None:
            raise ValueError(
                f"tuning job {name!r} has no best training job yet: no trial completed"
            )
        return best.name

    def best_estimator(self, best_training_job: str | Mapping[str, Any] | None = None) -> Estimator:
        """An :class:`Estimator` attached to the best trial (or to ``best_training_job``), as
        the SageMaker SDK's ``best_estimator``: its hyperparameters are the trial's and, once
        the tuning job has ended, its model is the version the tuning job registered, so
        ``deploy()`` serves it.

        Args:
            best_training_job: A trial's name, or the SDK's ``{"TrainingJobName": ...}``
                (a ``DescribeHyperParameterTuningJob`` ``BestTrainingJob``); default the best.

        Raises:
            ValueError: what :meth:`best_training_job` raises. InvalidInput: a
                ``best_training_job`` without a ``TrainingJobName``. What
                :meth:`Estimator.attach` raises.
        """
        if best_training_job is None:
            name: object = self.best_training_job()
        elif isinstance(best_training_job, Mapping):
            name = best_training_job.get("TrainingJobName")
        else:
            name = best_training_job
        if not isinstance(name, str):
            raise InvalidInput(
                "best_training_job must be a training job's name or the SDK's "
                f"{{'TrainingJobName': NAME}}, got {best_training_job!r}"
            )
        return type(self.estimator).attach(name, sagemaker_session=self._platform())

    def deploy(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        *,
        endpoint_name: str | None = None,
        wait: bool = True,
        data_capture_config: DataCaptureConfig | None = None,
        **options: Any,
    ) -> Predictor:
        """Serve the best trial's model (the version the tuning job registered) and return a
        :class:`~modelyard.predictor.Predictor`, as the SageMaker SDK's
        ``HyperparameterTuner.deploy``: ``best_estimator().deploy(...)``, its arguments in
        the SDK's order. ``endpoint_name`` defaults to the best trial's name, as the SDK's
        does (never the model's: an endpoint serving it already would be replaced);
        ``options`` are :meth:`Estimator.deploy`'s other keywords
        (``variant_name``, ``timeout``, ``serving_url``, ``predictor``, ``capture``,
        ``capture_redact``).

        Raises:
            ValueError: no tuning job, or it has not ended with a registered model. What
            :meth:`Estimator.deploy` raises.
        """
        best = self.best_training_job()
        return self.best_estimator(best).deploy(
            endpoint_name or best,
            initial_instance_count=initial_instance_count,
            instance_type=instance_type,
            serializer=serializer,
            deserializer=deserializer,
            wait=wait,
            data_capture_config=data_capture_config,
            **options,
        )

    def stop(self) -> Job:
        """Stop the running tuning job (the best finished trial is still registered)."""
        return self._platform().tuning.stop(self._latest().name)
