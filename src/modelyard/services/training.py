"""The training service: submit and run training jobs.

A job is submitted here (validated, recorded as Pending) and started by the job service
(:mod:`modelyard.services.jobs`), which owns the lifecycle every kind of job shares; in the
worker process the job service hands it back to :meth:`TrainingService.run`, which moves it
through InProgress to Completed (registering a model version), Failed (with the reason and the
tail of its log) or Stopped.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.domain import (
    Job,
    JobKind,
    JobStatus,
    ModelVersion,
    Source,
    Trust,
    hyperparameter_texts,
    validate_aliases,
    validate_name,
)
from modelyard.domain.numbers import shown_value
from modelyard.domain.references import validate_text
from modelyard.errors import InvalidInput
from modelyard.services.jobs import ACTIVE, JobService, check_exists, now
from modelyard.services.jobs import job_name as new_job_name
from modelyard.services.registry import RegistryService

if TYPE_CHECKING:
    from modelyard.training.runner import DataCache, RoundHook, TrainingOutcome


class TrainingService:
    """Control plane of training jobs (the CLI, the Estimator and later the REST API call it)."""

    def __init__(self, jobs: JobService, registry: RegistryService) -> None:
        self._jobs = jobs
        self._registry = registry

    # -- submitting --------------------------------------------------------------------------

    def submit(
        self,
        model_name: str,
        *,
        train: str,
        algorithm: str | None = None,
        script: str | None = None,
        validation: str | None = None,
        target: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        flavor: str | None = None,
        metric_definitions: Sequence[str] = (),
        aliases: Sequence[str] = (),
        trust: Trust | None = None,
        description: str | None = None,
        job_name: str | None = None,
    ) -> Job:
        """Validate a training request, record it as a Pending job and start its worker.

        Exactly one of ``algorithm`` (a built-in) and ``script`` (a SageMaker script-mode
        training script) is given. ``job_name`` names the job (default: the model's name, a
        timestamp and a random suffix). Raises InvalidInput / InvalidName naming what is
        wrong, AlreadyExists when a job has that name; nothing is recorded then.
        """
        if job_name is not None:
            validate_name(job_name, "job name")
        spec, hp = self.training_spec(
            model_name,
            train=train,
            algorithm=algorithm,
            script=script,
            validation=validation,
            target=target,
            hyperparameters=hyperparameters,
            flavor=flavor,
            metric_definitions=metric_definitions,
            aliases=aliases,
            trust=trust,
            description=description,
        )
        job = Job(
            name=new_job_name(model_name) if job_name is None else job_name,
            kind=JobKind.TRAINING,
            model_name=model_name,
            status=JobStatus.PENDING,
            spec=spec,
            hyperparameters=hyperparameter_texts(hp),
            created_at=now(),
        )
        return self._jobs.launch(self._jobs.store.create_job(job))

    def training_spec(
        self,
        model_name: str,
        *,
        train: str,
        algorithm: str | None = None,
        script: str | None = None,
        validation: str | None = None,
        target: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        flavor: str | None = None,
        metric_definitions: Sequence[str] = (),
        aliases: Sequence[str] = (),
        trust: Trust | None = None,
        description: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check a training request (the arguments of :meth:`submit`) and return the job's
        JSON-able spec and its hyperparameters. Hyperparameters not given keep their
        defaults, so a tuning job checks its fixed ones here and its tuned ones by range.

        Raises:
            InvalidInput, InvalidName, UnknownFlavor: naming what is wrong.
        """
        validate_name(model_name)
        aliases = validate_aliases(aliases)
        validate_text(description, "description")
        for key in hyperparameters or {}:
            # They become the version's params, whose names the registry checks: refuse now,
            # not after the whole job has trained.
            validate_name(str(key), "hyperparameter name")
        if (algorithm is None) == (script is None):
            raise InvalidInput("give exactly one of an algorithm and a script")
        if flavor is not None:  # refused now, not after the whole job has trained
            from modelyard.runtimes import get_runtime

            get_runtime(flavor)
        hp = hyperparameters_set(hyperparameters, algorithm)
        if algorithm is not None:
            from modelyard.training.algorithms import get_algorithm
            from modelyard.training.hyperparameters import validate

            validate(get_algorithm(algorithm).hyperparameters, hp)
        else:
            assert script is not None
            if not Path(script).is_file():
                raise InvalidInput(f"no such training script: {script}")
            from modelyard.training.metric_definitions import parse_metric_definition

            for definition in metric_definitions:
                parse_metric_definition(definition)
        if algorithm is not None and validation is None and hp.get(EARLY_STOPPING) is not None:
            raise no_validation_to_stop_early()
        if target is not None and not isinstance(target, str):  # from Python, a column number
            raise InvalidInput(
                f"the target must be a column's name, got {type(target).__name__} "
                f"{shown_value(target)}"
            )
        if target is not None and not target.strip():
            raise InvalidInput(
                "the target column's name is empty: name the column, or leave the target out "
                "for the default (a column named label or target; a headerless CSV's first)"
            )
        for channel, uri in (("train", train), ("validation", validation)):
            if uri is not None:
                check_exists(channel, uri)
        spec: dict[str, Any] = {
            "algorithm": algorithm,
            "script": str(Path(script).absolute()) if script else None,
            "train": _absolute(train),
            "validation": _absolute(validation) if validation else None,
            "target": target,
            "flavor": flavor,
            "metric_definitions": list(metric_definitions),
            "aliases": list(aliases),
            "trust": (trust or Trust()).to_dict(),
            "description": description,
        }
        return spec, hp

    # -- running (inside the worker process) -------------------------------------------------

    def run(
        self,
        name: str,
        stop: threading.Event,
        *,
        on_round: RoundHook | None = None,
        cache: DataCache | None = None,
        stage_only: bool = False,
    ) -> Job:
        """Execute a job in this process. Never raises for a failure of the job itself.

        Args:
            on_round: Per-round hook (a tuning trial's pruning); an ``EarlyStopped`` it raises
                ends the job Stopped with that reason.
            cache: Datasets already read in this process.
            stage_only: Store the model package but register no version: the job's
                ``artifact`` holds it (a tuning trial; only the best is registered).
        """
        from modelyard.training.runner import EarlyStopped, run_job  # heavy: worker only

        job = self._jobs.store.transition(
            name,
            (JobStatus.PENDING,),
            JobStatus.IN_PROGRESS,
            pid=os.getpid(),
            host=self._jobs.host,
            started_at=now(),
        )
        log_path = self._jobs.log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        keep: Callable[[TrainingOutcome], Any] = (
            (lambda result: self._stage(job, result))
            if stage_only
            else (lambda result: self._register(job, result))
        )
        try:
            outcome, kept = run_job(
                job,
                log_path,
                stop,
                keep,
                on_round=on_round,
                cache=cache,
                log_limits=self._jobs.log_limits,
            )
        except EarlyStopped as exc:
            return self._jobs.end_job(
                name,
                ACTIVE,
                JobStatus.STOPPED,
                log_path,
                pid_is=os.getpid(),
                failure_reason=str(exc),
            )
        except Exception as exc:  # the job failed; the worker itself must not crash
            return self._jobs.end_failed(job, exc, stop)
        return self._jobs.end_job(
            name,
            (JobStatus.IN_PROGRESS, JobStatus.STOPPING),
            JobStatus.COMPLETED,
            log_path,
            pid_is=os.getpid(),
            metrics=outcome.metrics,
            model_version=kept.version if isinstance(kept, ModelVersion) else None,
            artifact=kept if isinstance(kept, dict) else None,
        )

    @staticmethod
    def _trust_and_params(job: Job, outcome: TrainingOutcome) -> tuple[Trust, dict[str, str]]:
        granted = Trust.from_dict(job.spec.get("trust"))
        trust = Trust(
            pickle=granted.pickle,
            user_code=granted.user_code,
            types=tuple(sorted({*granted.types, *outcome.trusted_types})),
        )
        params = dict(job.hyperparameters)
        if outcome.classes:
            # Which label each predicted index (or probability column) stands for.
            params["classes"] = json.dumps(list(outcome.classes))
        return trust, params

    def _register(self, job: Job, outcome: TrainingOutcome) -> ModelVersion:
        trust, params = self._trust_and_params(job, outcome)
        return self._registry.register(
            job.model_name,
            outcome.model,
            flavor=outcome.flavor,
            input_example=outcome.input_example,
            params=params,
            metrics=outcome.metrics,
            aliases=job.spec.get("aliases") or (),
            description=job.spec.get("description"),
            trust=trust,
            source=Source(kind="training_job", uri=job.name),
            baseline=outcome.baseline,
        )

    def _stage(self, job: Job, outcome: TrainingOutcome) -> dict[str, Any]:
        """The model package of a trial, stored but not registered: ``StagedModel.to_dict()``
        plus the ``params`` its version would get."""
        trust, params = self._trust_and_params(job, outcome)
        staged = self._registry.stage(
            outcome.model,
            flavor=outcome.flavor,
            input_example=outcome.input_example,
            trust=trust,
            baseline=outcome.baseline,
        )
        return {**staged.to_dict(), "params": params}

    # -- reading -----------------------------------------------------------------------------

    def get(self, name: str) -> Job:
        """A training job (a dead worker detected); a tuning trial is one too.

        Raises:
            JobNotFound: no job has that name.
            InvalidInput: the job is of another kind (a tuning or batch job).
        """
        job = self._jobs.get(name)
        if job.kind is not JobKind.TRAINING:
            raise InvalidInput(f"job {name!r} is a {job.kind.value} job, not a training job")
        return job

    def registered_version(self, job: Job) -> ModelVersion | None:
        """The model version a completed job registered: a tuning trial's is the one its
        tuning job registered, if it was the best trial (no other trial's model is
        registered); None while that tuning job runs."""
        if job.model_version is None and job.parent is not None:
            tuning = self._jobs.get(job.parent)
            if (tuning.artifact or {}).get("best_trial") == job.name:
                job = tuning
        if job.model_version is None:
            return None
        return self._registry.get_version(f"{job.model_name}:{job.model_version}")


#: The built-in boosters' early stopping, which is measured on a validation channel.
EARLY_STOPPING = "early_stopping_rounds"


def no_validation_to_stop_early() -> InvalidInput:
    """The refusal of early stopping without a validation channel (before any job starts)."""
    return InvalidInput(
        f"{EARLY_STOPPING} needs a validation channel: give one, or leave {EARLY_STOPPING} out"
    )


def hyperparameters_set(
    hyperparameters: Mapping[str, Any] | None, algorithm: str | None
) -> dict[str, Any]:
    """The hyperparameters a request sets, by name. For a built-in algorithm a None value
    sets nothing, so the default applies (the SageMaker SDK's built-in algorithm estimators
    send no None-valued hyperparameter); a script gets it, JSON-encoded as ``null``, as the
    SDK's script-mode estimators send it."""
    return {
        str(k): v for k, v in (hyperparameters or {}).items() if algorithm is None or v is not None
    }


def _absolute(uri: str) -> str:
    return uri if "://" in uri else str(Path(uri).absolute())
