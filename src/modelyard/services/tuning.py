"""The tuning service: hyperparameter tuning jobs whose trials are training jobs.

The caller (``modelyard tune``, ``HyperparameterTuner.fit``) validates the request here; a
Pending tuning job is recorded and its coordinator started in a worker process
(:mod:`modelyard.services.tuning_workers` says what the coordinator and its trial runners
do). Trials stage their model packages; only the best one becomes a model version.
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelyard.domain import (
    Job,
    JobKind,
    JobStatus,
    Trust,
    hyperparameter_texts,
    validate_name,
)
from modelyard.errors import Conflict, InvalidInput
from modelyard.services.jobs import JobService, check_exists
from modelyard.services.jobs import job_name as new_job_name
from modelyard.services.registry import RegistryService
from modelyard.services.training import (
    EARLY_STOPPING,
    TrainingService,
    hyperparameters_set,
    no_validation_to_stop_early,
)
from modelyard.services.tuning_records import (
    Trial,
    TuningConfig,
    TuningSummary,
    check_objective,
    infer_maximize,
    named_direction,
)
from modelyard.services.tuning_workers import TuningWorkers
from modelyard.tuning.space import SearchSpace
from modelyard.tuning.strategies import check_strategy, prunes

__all__ = ["Trial", "TuningConfig", "TuningService", "TuningSummary", "infer_maximize"]

_MAX_TRIALS = 10_000
_MAX_PARALLEL = 64


def _now() -> datetime:
    return datetime.now(UTC)


def _whole(value: object) -> bool:
    """An int, or an integer type such as numpy's; not a bool, a float or a string."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class TuningService:
    """Control plane of tuning jobs (the CLI, ``HyperparameterTuner`` and later the REST API)."""

    def __init__(
        self,
        jobs: JobService,
        training: TrainingService,
        registry: RegistryService,
        study_url: str,
        start_runner: Callable[[str], int],
        poll_s: float = 0.5,
        stale_s: float = 60.0,
    ) -> None:
        """``start_runner(job)`` starts a trial-runner process for tuning job ``job`` (from
        inside its coordinator) and returns its pid; it ends when the runner has no more
        trials to run."""
        self._lifecycle = jobs
        self._jobs = jobs.store
        self._training = training
        self._study_url = study_url
        self._workers = TuningWorkers(
            jobs,
            training,
            registry,
            study_url,
            poll_s=poll_s,
            stale_s=stale_s,
            start_runner=start_runner,
        )

    # -- submitting --------------------------------------------------------------------------

    def submit(
        self,
        model_name: str,
        *,
        train: str,
        objective: str,
        ranges: Sequence[str],
        algorithm: str | None = None,
        script: str | None = None,
        validation: str | None = None,
        target: str | None = None,
        maximize: bool | None = None,
        default_maximize: bool | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        strategy: str = "bayesian",
        max_trials: int | None = 20,
        parallel: int = 1,
        early_stopping: bool = False,
        max_failed_trials: int | None = None,
        warm_start: str | None = None,
        seed: int | None = None,
        flavor: str | None = None,
        metric_definitions: Sequence[str] = (),
        aliases: Sequence[str] = (),
        trust: Trust | None = None,
        description: str | None = None,
        job_name: str | None = None,
    ) -> Job:
        """Validate a tuning request, record it as a Pending tuning job and start it.

        Args:
            objective: The metric to optimise, as the trials report it (``validation:auc``;
                for a script, the name of one of its metric definitions).
            ranges: ``--range`` strings (see :mod:`modelyard.tuning.space`).
            maximize: The direction; None infers it from the metric's name.
            default_maximize: The direction when ``maximize`` is None and the metric's name
                does not say (the SageMaker SDK's Maximize); None refuses such a metric.
            hyperparameters: Fixed hyperparameters for every trial.
            strategy: ``bayesian``, ``random``, ``grid`` or ``hyperband``.
            max_trials: Trials to run (a grid runs each point at most once); None: one trial
                per point for a grid, else one trial (the SageMaker SDK's defaults).
            parallel: Trials running at once, each in its own process.
            early_stopping: Prune trials whose per-round objective trails the median.
            max_failed_trials: Failed trials tolerated before the job fails
                (default: a fifth of ``max_trials``, at least 3).
            warm_start: A finished tuning job whose trials seed this one's search.
            seed: Seed for the proposals (default: random, recorded on the job).
            job_name: The tuning job's name (default: the model's name, ``tune``, a timestamp
                and a random suffix); its trials are named after it.

        Raises:
            InvalidInput, InvalidName: naming what is wrong (nothing is recorded then).
            JobNotFound: ``warm_start`` names no job. AlreadyExists: a job has that name.
        """
        if job_name is not None:
            validate_name(job_name, "job name")
        check_objective(objective)
        check_strategy(strategy)
        static = hyperparameters_set(hyperparameters, algorithm)
        space = SearchSpace.parse(ranges)
        if max_trials is None:  # a grid: every point, as many as allowed; else one trial
            grid = strategy == "grid"
            max_trials = min(SearchSpace.grid_size(space.grid()), _MAX_TRIALS) if grid else 1
        for tuned in space.names:
            # The best trial's hyperparameters become its version's params, whose names the
            # registry checks: refuse now, not once every trial has trained (a fixed
            # hyperparameter's name is checked by training_spec).
            validate_name(tuned, "hyperparameter name")
        both = sorted(set(space.names) & set(static))
        if both:
            raise InvalidInput(
                f"hyperparameter {', '.join(both)} is both fixed and tuned: give it a fixed value "
                "or a range, not both"
            )
        if not _whole(max_trials) or not 1 <= max_trials <= _MAX_TRIALS:
            raise InvalidInput(
                f"the number of trials must be in [1, {_MAX_TRIALS}], a whole number; "
                f"got {max_trials!r}"
            )
        if not _whole(parallel) or not 1 <= parallel <= _MAX_PARALLEL:
            raise InvalidInput(
                f"the trials at once (parallel) must be in [1, {_MAX_PARALLEL}], a whole number; "
                f"got {parallel!r}"
            )
        if seed is not None and (not _whole(seed) or not 0 <= seed < 2**32):
            raise InvalidInput(f"the seed must be in [0, 2**32), a whole number; got {seed!r}")
        if max_failed_trials is not None and (
            not _whole(max_failed_trials) or max_failed_trials < 0
        ):
            raise InvalidInput(
                f"the failed trials tolerated must be 0 or more, a whole number; "
                f"got {max_failed_trials!r}"
            )
        max_trials, parallel = int(max_trials), int(parallel)  # numpy's integers are not JSON
        if max_failed_trials is not None:
            max_failed_trials = int(max_failed_trials)
        spec, hp = self._training.training_spec(
            model_name,
            train=train,
            algorithm=algorithm,
            script=script,
            validation=validation,
            target=target,
            hyperparameters=static,
            flavor=flavor,
            metric_definitions=metric_definitions,
            aliases=aliases,
            trust=trust,
            description=description,
        )
        max_rounds = self._check_algorithm_space(algorithm, space, static, strategy, early_stopping)
        if algorithm is not None and validation is None and EARLY_STOPPING in space.names:
            raise no_validation_to_stop_early()  # every trial would fail in its worker
        if script is None and validation is None and objective.startswith("validation:"):
            # Every trial would train, then fail to report it: refused now, not after trial 1.
            raise InvalidInput(
                f"the objective {objective} is measured on validation data, and this job has "
                "none: give a validation channel, or optimise a train: metric"
            )
        if script is not None:
            names = [d.split("=", 1)[0].strip() for d in metric_definitions]
            if objective not in names:
                raise InvalidInput(
                    f"the objective {objective!r} must be one of the script's metric "
                    f"definitions ({', '.join(names) or 'none given'}): add the metric definition "
                    f"'{objective}=REGEX'"
                )
        if strategy == "grid":
            max_trials = min(max_trials, SearchSpace.grid_size(space.grid()))
        direction = named_direction(objective) if maximize is None else maximize
        if direction is None:  # the name does not say: the default given, else a refusal
            direction = infer_maximize(objective) if default_maximize is None else default_maximize
        if warm_start is not None:
            parent = self._lifecycle.get(warm_start)  # a dead coordinator detected
            before = TuningConfig.of(parent)
            if (before.objective, before.maximize) != (objective, direction):
                raise InvalidInput(
                    f"warm start from {warm_start!r}: it optimised {before.direction} "
                    f"{before.objective}; this job would "
                    f"{'maximize' if direction else 'minimize'} {objective}"
                )
            if not parent.status.finished:
                raise Conflict(f"warm start from {warm_start!r}: it is still {parent.status}")
        tuning = {
            "objective": objective,
            "maximize": direction,
            "ranges": space.texts(),
            "strategy": strategy,
            "max_trials": max_trials,
            "parallel": min(parallel, max_trials),
            "early_stopping": early_stopping,
            "max_failed_trials": (
                max(3, max_trials // 5) if max_failed_trials is None else max_failed_trials
            ),
            "seed": int.from_bytes(os.urandom(4), "big") if seed is None else int(seed),
            "warm_start": warm_start,
            "max_rounds": max_rounds,
        }
        job = Job(
            name=new_job_name(model_name, "tune") if job_name is None else job_name,
            kind=JobKind.TUNING,
            model_name=model_name,
            status=JobStatus.PENDING,
            spec={**spec, "tuning": tuning},
            hyperparameters=hyperparameter_texts(hp),
            created_at=_now(),
        )
        return self._lifecycle.launch(self._jobs.create_job(job))

    @staticmethod
    def _check_algorithm_space(
        algorithm: str | None,
        space: SearchSpace,
        static: Mapping[str, Any],
        strategy: str,
        early_stopping: bool,
    ) -> int | None:
        """Check the ranges against a built-in algorithm; return its most rounds per trial."""
        if algorithm is None:
            if prunes(strategy, early_stopping):
                raise InvalidInput(
                    "early stopping and hyperband prune on per-round metrics, which only the "
                    "built-in xgboost and lightgbm report; a script reports its final metrics"
                )
            return None
        from modelyard.training.algorithms import get_algorithm

        algo = get_algorithm(algorithm)
        space.check_against(algo.hyperparameters)
        rounds = algo.rounds_hyperparameter
        if rounds is None:
            if prunes(strategy, early_stopping):
                raise InvalidInput(
                    f"{algorithm} reports no per-round metrics, so its trials cannot be pruned: "
                    "use xgboost or lightgbm, or tune without early stopping and hyperband"
                )
            return None
        tuned = {r.name: r for r in space.ranges}
        if rounds in tuned:
            r = tuned[rounds]
            spec = algo.hyperparameters[rounds]
            return max(spec.convert(c) for c in r.choices) if r.kind == "cat" else int(r.high)
        value = algo.hyperparameters[rounds].convert(static.get(rounds))
        return int(value)

    # -- reading -----------------------------------------------------------------------------

    def get(self, name: str) -> Job:
        """A tuning job (a dead coordinator detected). Raises JobNotFound, InvalidInput."""
        job = self._lifecycle.get(name)
        TuningConfig.of(job)
        return job

    def list_jobs(self, model_name: str | None = None, limit: int = 100) -> list[Job]:
        """Tuning jobs, newest first, at most ``limit``.

        Raises:
            InvalidInput: ``limit`` is not from 1 to ``MAX_LIMIT``.
        """
        return self._lifecycle.list_jobs(model_name, limit=limit, kind=JobKind.TUNING)

    def summary(self, name: str) -> TuningSummary:
        """The job, every trial and the best trial so far. Raises JobNotFound, InvalidInput."""
        return self._workers.summary(name)

    def stop(self, name: str) -> Job:
        """Ask a tuning job to stop: running trials are stopped, and the best trial finished
        so far is still registered. Raises Conflict if it already ended."""
        self.get(name)
        return self._lifecycle.stop(name)

    def wait(self, name: str, timeout_s: float | None = None) -> Job:
        """Block until the tuning job ends (or the timeout passes)."""
        return self._lifecycle.wait(name, timeout_s, poll_s=0.25)

    def write_plots(self, name: str, folder: Path) -> list[Path]:
        """Optimisation history and parameter importance as PNG and HTML files in ``folder``."""
        from modelyard.tuning.plots import write_plots
        from modelyard.tuning.study import open_study

        summary = self.summary(name)
        with open_study(
            self._study_url, name, direction=summary.config.direction, create=False
        ) as study:
            return write_plots(study, folder, summary.config.objective)

    # -- the coordinator (inside the tuning job's worker process) ----------------------------

    # -- inside the worker processes ---------------------------------------------------------

    def run(self, name: str, stop: threading.Event) -> Job:
        """Coordinate tuning job ``name`` in this process (its worker). Never raises for a
        failure of the job itself: it is recorded."""
        return self._workers.coordinate(name, stop)

    def join(self, name: str, stop: threading.Event) -> int:
        """Run trials of a running tuning job in this process, beside its own runners: how
        a tuning job uses several machines. Returns how many trials ran here.

        Raises:
            JobNotFound, InvalidInput (not a tuning job, or its data is not readable here),
            Conflict (the job is not in progress).
        """
        job = self.get(name)
        if job.status is not JobStatus.IN_PROGRESS:
            raise Conflict(f"tuning job {name!r} is {job.status.value}, not InProgress")
        for channel in ("train", "validation"):
            uri = job.spec.get(channel)
            if uri:
                try:
                    check_exists(channel, uri)
                except InvalidInput as exc:
                    raise InvalidInput(
                        f"{exc.message} on this machine: trials on several machines need "
                        "their data at a shared URL (s3://…) or the same path everywhere"
                    ) from None
        return self._workers.run_trials(name, stop)

    def run_trials(self, name: str, stop: threading.Event) -> int:
        """Run trials of tuning job ``name`` in this process (a trial runner) until none is
        left; returns how many it ran."""
        return self._workers.run_trials(name, stop)
