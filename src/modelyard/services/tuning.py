"""The tuning service: hyperparameter tuning jobs whose trials are training jobs.

A tuning job runs in three kinds of process:

- the caller (``modelyard tune``, ``HyperparameterTuner.fit``) validates the request, records a
  Pending tuning job and starts its coordinator;
- the coordinator (``python -m modelyard.worker JOB``, :meth:`TuningService.run`) creates the
  Optuna study in the metadata database, keeps ``parallel`` trial runners alive, notices a
  runner that died (its trial is marked Failed, not left running), and at the end registers
  the best trial's model;
- each trial runner (``python -m modelyard.worker --trials JOB``, :meth:`run_trials`) claims
  the next trial slot (a trial job whose name is unique, so two runners on any machines never
  take the same one), asks the study for hyperparameters, trains in-process, reports each
  round for pruning and tells the study the result.

Trials stage their model packages; only the best one becomes a model version.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modelyard.domain import Job, JobKind, JobStatus, ModelVersion, Source, StagedModel, Trust
from modelyard.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    JobFailed,
    ModelyardError,
)
from modelyard.services.registry import RegistryService
from modelyard.services.training import TrainingService, job_name
from modelyard.services.training import process_alive as _alive
from modelyard.storage.base import JobStore
from modelyard.tuning.space import SearchSpace
from modelyard.tuning.strategies import check_strategy, prunes

if TYPE_CHECKING:
    import optuna

_ACTIVE = (JobStatus.PENDING, JobStatus.IN_PROGRESS, JobStatus.STOPPING)
_MAX_TRIALS = 10_000
_MAX_PARALLEL = 64
#: How long stopped runners get to finish their trial's clean-up before they are killed.
_STOP_GRACE_S = 60.0
# Metrics where larger is better; everything else (loss, error, rmse…) is minimised unless
# the user says otherwise.
_LARGER_IS_BETTER = ("auc", "accuracy", "acc", "f1", "r2", "precision", "recall", "ndcg", "map")


def _now() -> datetime:
    return datetime.now(UTC)


def infer_maximize(objective: str) -> bool:
    """Whether ``objective`` (``validation:auc``) is to be maximised, from its metric name.

    Raises:
        InvalidInput: when the name does not say; the user must pass the direction.
    """
    metric = objective.rsplit(":", 1)[-1].split("@")[0].lower()
    if metric in _LARGER_IS_BETTER:
        return True
    if any(word in metric for word in ("loss", "error", "rmse", "mae", "mse", "mape", "deviance")):
        return False
    raise InvalidInput(
        f"cannot tell whether {objective!r} is better large or small: pass --maximize or --minimize"
    )


@dataclass(frozen=True)
class TuningConfig:
    """A tuning job's request, as recorded in its spec."""

    objective: str
    maximize: bool
    space: SearchSpace
    static: dict[str, str]
    strategy: str
    max_trials: int
    parallel: int
    early_stopping: bool
    max_failed_trials: int
    seed: int
    warm_start: str | None
    max_rounds: int | None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return "maximize" if self.maximize else "minimize"

    @property
    def prunes(self) -> bool:
        return prunes(self.strategy, self.early_stopping)

    @classmethod
    def of(cls, job: Job) -> TuningConfig:
        if job.kind is not JobKind.TUNING:
            raise InvalidInput(f"job {job.name!r} is a {job.kind.value} job, not a tuning job")
        t = job.spec["tuning"]
        return cls(
            objective=t["objective"],
            maximize=t["maximize"],
            space=SearchSpace.parse(t["ranges"]),
            static=dict(job.hyperparameters),
            strategy=t["strategy"],
            max_trials=t["max_trials"],
            parallel=t["parallel"],
            early_stopping=t["early_stopping"],
            max_failed_trials=t["max_failed_trials"],
            seed=t["seed"],
            warm_start=t.get("warm_start"),
            max_rounds=t.get("max_rounds"),
            training={k: v for k, v in job.spec.items() if k != "tuning"},
        )

    def pruner(self) -> Any:
        from modelyard.tuning.strategies import make_pruner

        return make_pruner(self.strategy, self.early_stopping, self.max_rounds)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b


@dataclass(frozen=True)
class Trial:
    """One trial of a tuning job: its training job and what came of it."""

    job: Job
    state: str  # the job status, or "Pruned" for a trial the pruner stopped
    value: float | None  # the objective, for a completed trial

    @property
    def name(self) -> str:
        return self.job.name


@dataclass(frozen=True)
class TuningSummary:
    """A tuning job, its trials (in slot order) and the best one so far."""

    job: Job
    config: TuningConfig
    trials: list[Trial]
    best: Trial | None

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)


class TuningService:
    """Control plane of tuning jobs (the CLI, ``HyperparameterTuner`` and later the REST API)."""

    def __init__(
        self,
        jobs: JobStore,
        training: TrainingService,
        registry: RegistryService,
        study_url: str,
        host: str,
        poll_s: float = 0.25,
    ) -> None:
        self._jobs = jobs
        self._training = training
        self._registry = registry
        self._study_url = study_url
        self._host = host
        self._poll_s = poll_s

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
        hyperparameters: Mapping[str, Any] | None = None,
        strategy: str = "bayesian",
        max_trials: int = 20,
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
    ) -> Job:
        """Validate a tuning request, record it as a Pending tuning job and start it.

        Args:
            objective: The metric to optimise, as the trials report it (``validation:auc``;
                for a script, the name of one of its metric definitions).
            ranges: ``--range`` strings (see :mod:`modelyard.tuning.space`).
            maximize: The direction; None infers it from the metric's name.
            hyperparameters: Fixed hyperparameters for every trial.
            strategy: ``bayesian``, ``random``, ``grid`` or ``hyperband``.
            max_trials: Trials to run (a grid runs each point at most once).
            parallel: Trials running at once, each in its own process.
            early_stopping: Prune trials whose per-round objective trails the median.
            max_failed_trials: Failed trials tolerated before the job fails
                (default: a fifth of ``max_trials``, at least 3).
            warm_start: A finished tuning job whose trials seed this one's search.
            seed: Seed for the proposals (default: random, recorded on the job).

        Raises:
            InvalidInput, InvalidName: naming what is wrong (nothing is recorded then).
            JobNotFound: ``warm_start`` names no job.
        """
        check_strategy(strategy)
        static = {str(k): v for k, v in (hyperparameters or {}).items()}
        space = SearchSpace.parse(ranges)
        both = sorted(set(space.names) & set(static))
        if both:
            raise InvalidInput(
                f"hyperparameter {', '.join(both)} is both fixed (--hp) and tuned (--range)"
            )
        if not 1 <= max_trials <= _MAX_TRIALS:
            raise InvalidInput(f"--max-trials must be in [1, {_MAX_TRIALS}], got {max_trials}")
        if not 1 <= parallel <= _MAX_PARALLEL:
            raise InvalidInput(f"--parallel must be in [1, {_MAX_PARALLEL}], got {parallel}")
        if max_failed_trials is not None and max_failed_trials < 0:
            raise InvalidInput(f"--max-failed-trials must be 0 or more, got {max_failed_trials}")
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
        if script is not None:
            names = [d.split("=", 1)[0].strip() for d in metric_definitions]
            if objective not in names:
                raise InvalidInput(
                    f"the objective {objective!r} must be one of the script's metric "
                    f"definitions ({', '.join(names) or 'none given'}): add "
                    f"--metric-definition '{objective}=REGEX'"
                )
        if strategy == "grid":
            max_trials = min(max_trials, SearchSpace.grid_size(space.grid()))
        if warm_start is not None:
            parent = self._jobs.get_job(warm_start)
            TuningConfig.of(parent)
            if not parent.status.finished:
                raise Conflict(f"warm start from {warm_start!r}: it is still {parent.status}")
        direction = infer_maximize(objective) if maximize is None else maximize
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
            name=job_name(model_name, "tune"),
            kind=JobKind.TUNING,
            model_name=model_name,
            status=JobStatus.PENDING,
            spec={**spec, "tuning": tuning},
            hyperparameters={k: str(v) for k, v in hp.items()},
            created_at=_now(),
        )
        return self._training.launch(self._jobs.create_job(job))

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
                    "use xgboost or lightgbm, or drop --early-stopping / hyperband"
                )
            return None
        tuned = {r.name: r for r in space.ranges}
        if rounds in tuned:
            r = tuned[rounds]
            return max(int(c) for c in r.choices) if r.kind == "cat" else int(r.high)
        value = algo.hyperparameters[rounds].convert(static.get(rounds))
        return int(value)

    # -- reading -----------------------------------------------------------------------------

    def get(self, name: str) -> Job:
        """A tuning job (a dead coordinator detected). Raises JobNotFound, InvalidInput."""
        job = self._training.get(name)
        TuningConfig.of(job)
        return job

    def list_jobs(self, model_name: str | None = None, limit: int = 100) -> list[Job]:
        """Tuning jobs, newest first."""
        return self._training.list_jobs(model_name, limit=limit, kind=JobKind.TUNING)

    def summary(self, name: str) -> TuningSummary:
        """The job, every trial and the best trial so far."""
        job = self.get(name)
        config = TuningConfig.of(job)
        trials = [
            _trial(self._training.reconcile(t), config)
            for t in sorted(self._trial_jobs(name, config), key=lambda j: j.name)
        ]
        return TuningSummary(job, config, trials, _best(trials, config))

    def _trial_jobs(self, name: str, config: TuningConfig) -> list[Job]:
        return self._jobs.list_jobs(parent=name, limit=config.max_trials + 1)

    def stop(self, name: str) -> Job:
        """Ask a tuning job to stop: running trials are stopped, and the best trial finished
        so far is still registered. Raises Conflict if it already ended."""
        self.get(name)
        return self._training.stop(name)

    def wait(self, name: str, timeout_s: float | None = None) -> Job:
        """Block until the tuning job ends (or the timeout passes)."""
        return self._training.wait(name, timeout_s)

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

    def run(self, name: str, stop: threading.Event) -> Job:
        """Run a tuning job's coordinator in this process. Never raises for a failure of the
        job itself (it is recorded)."""
        from modelyard.tuning.study import open_study, warm_start

        job = self._jobs.transition(
            name,
            (JobStatus.PENDING,),
            JobStatus.IN_PROGRESS,
            pid=os.getpid(),
            host=self._host,
            started_at=_now(),
        )
        config = TuningConfig.of(job)
        log_path = self._training.log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        runners: set[int] = set()
        with open(log_path, "a", buffering=1, encoding="utf-8") as log:
            try:
                log.write(
                    f"tuning {job.model_name}: {config.strategy}, {config.max_trials} trials, "
                    f"{config.parallel} at a time, {config.direction} {config.objective}\n"
                )
                with open_study(
                    self._study_url,
                    name,
                    direction=config.direction,
                    pruner=config.pruner(),
                    create=True,
                ) as study:
                    if config.warm_start and not study.get_trials(deepcopy=False):
                        with open_study(
                            self._study_url, config.warm_start, direction=config.direction
                        ) as parent:
                            copied = warm_start(study, parent, config.space)
                        log.write(f"warm start: {copied} trials of {config.warm_start}\n")
                    self._supervise(name, config, study, stop, runners, log)
            except Exception as exc:  # the job failed; the coordinator must not crash
                _terminate(runners)
                reason = exc.message if isinstance(exc, ModelyardError) else f"{exc!r}"
                log.write(f"tuning failed: {reason}\n")
                return self._end(name, JobStatus.FAILED, log_path, failure_reason=reason)
            return self._finish(name, config, stop, log_path, log)

    def _supervise(
        self,
        name: str,
        config: TuningConfig,
        study: optuna.Study,
        stop: threading.Event,
        runners: set[int],
        log: IO[str],
    ) -> None:
        """Keep ``config.parallel`` runners going until the trials are used up, the failure
        budget is spent, the objective turns out missing, or a stop is asked for."""
        spawned = 0
        while True:
            for pid in [p for p in runners if not _alive(p)]:
                runners.discard(pid)
                self._fail_orphans(name, config, study, pid, log)
            if stop.is_set() or self._jobs.get_job(name).status is JobStatus.STOPPING:
                stop.set()
                _terminate(runners)
                for pid in list(runners):
                    self._fail_orphans(name, config, study, pid, log)
                return
            trials = [_trial(t, config) for t in self._trial_jobs(name, config)]
            failed = sum(1 for t in trials if t.state == JobStatus.FAILED.value)
            exhausted = (
                failed > config.max_failed_trials or _missing_objective(trials, config) is not None
            )
            active = sum(1 for t in trials if JobStatus(t.job.status) in _ACTIVE)
            left = config.max_trials - len(trials) + active
            wanted = 0 if exhausted else min(config.parallel, left)
            if not runners and wanted == 0:
                return
            while len(runners) < wanted:
                if spawned >= config.parallel + config.max_trials:
                    raise JobFailed(
                        f"trial runner processes keep dying ({spawned} started); see the job log"
                    )
                job = self._jobs.get_job(name)
                runners.add(self._training.launch_worker(["--trials", job.name], job.name))
                spawned += 1
            time.sleep(self._poll_s)

    def _fail_orphans(
        self, name: str, config: TuningConfig, study: optuna.Study, pid: int, log: IO[str]
    ) -> None:
        """Trials of a runner that ended: still active means it died under them."""
        import optuna

        for job in self._trial_jobs(name, config):
            if job.pid != pid or job.status not in _ACTIVE:
                continue
            ended = self._training.reconcile(job)
            log.write(f"trial {job.name}: its runner (pid {pid}) died; {ended.status}\n")
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            owner = trial.user_attrs.get("job")
            if owner is None:
                continue
            try:
                status = self._jobs.get_job(owner).status
            except ModelyardError:
                continue
            if status.finished:
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)

    def _finish(
        self,
        name: str,
        config: TuningConfig,
        stop: threading.Event,
        log_path: Path,
        log: IO[str],
    ) -> Job:
        summary = self.summary(name)
        failed = summary.count(JobStatus.FAILED.value)
        log.write(
            f"trials: {summary.count(JobStatus.COMPLETED.value)} completed, {failed} failed, "
            f"{summary.count('Pruned')} pruned, {summary.count(JobStatus.STOPPED.value)} stopped\n"
        )
        missing = _missing_objective(summary.trials, config)
        if missing is not None:
            return self._end(name, JobStatus.FAILED, log_path, failure_reason=missing)
        if failed > config.max_failed_trials:
            last = next(t for t in reversed(summary.trials) if t.state == JobStatus.FAILED.value)
            why = (last.job.failure_reason or "").splitlines()[:1]
            return self._end(
                name,
                JobStatus.FAILED,
                log_path,
                failure_reason=(
                    f"{failed} trials failed, more than the failure budget "
                    f"({config.max_failed_trials}); {last.name}: {why[0] if why else '?'}"
                ),
            )
        best = summary.best
        if best is None:
            if stop.is_set():
                return self._end(
                    name, JobStatus.STOPPED, log_path, failure_reason="stopped before any trial"
                )
            return self._end(name, JobStatus.FAILED, log_path, failure_reason="no trial completed")
        version = self._register_best(summary.job, best)
        log.write(
            f"best trial {best.name}: {config.objective}={best.value:.6g}, "
            f"registered {version.ref}\n"
        )
        return self._end(
            name,
            JobStatus.STOPPED if stop.is_set() else JobStatus.COMPLETED,
            log_path,
            failure_reason="stopped by request" if stop.is_set() else None,
            metrics=dict(best.job.metrics),
            model_version=version.version,
            artifact={"best_trial": best.name},
        )

    def _register_best(self, job: Job, best: Trial) -> ModelVersion:
        artifact = dict(best.job.artifact or {})
        params = dict(artifact.pop("params", {}) or best.job.hyperparameters)
        return self._registry.register_staged(
            job.model_name,
            StagedModel.from_dict(artifact),
            aliases=job.spec.get("aliases") or (),
            params=params,
            metrics=best.job.metrics,
            description=job.spec.get("description"),
            source=Source(kind="tuning_job", uri=f"{job.name}/{best.name}"),
        )

    def _end(self, name: str, status: JobStatus, log_path: Path, **fields: Any) -> Job:
        digest = self._training.keep_log(log_path)
        return self._jobs.transition(
            name, _ACTIVE, status, log_digest=digest, ended_at=_now(), **fields
        )

    # -- a trial runner (inside a runner process) --------------------------------------------

    def run_trials(self, name: str, stop: threading.Event) -> int:
        """Claim and run trials of tuning job ``name`` until none is left, the job stops or
        its failure budget is spent. Returns how many trials this runner ran."""
        import optuna

        from modelyard.training.runner import DataCache
        from modelyard.tuning.strategies import make_sampler, trial_seed
        from modelyard.tuning.study import PruningHook, open_study

        job = self._jobs.get_job(name)
        config = TuningConfig.of(job)
        cache = DataCache()
        ran = 0
        with open_study(
            self._study_url, name, direction=config.direction, pruner=config.pruner()
        ) as study:
            while not stop.is_set():
                if self._jobs.get_job(name).status is not JobStatus.IN_PROGRESS:
                    break
                trials = [_trial(t, config) for t in self._trial_jobs(name, config)]
                failed = sum(1 for t in trials if t.state == JobStatus.FAILED.value)
                if failed > config.max_failed_trials or _missing_objective(trials, config):
                    break
                claimed = self._claim(job, config, len(trials))
                if claimed is None:
                    break
                trial_name, slot = claimed
                study.sampler = make_sampler(
                    config.strategy, config.space, trial_seed(config.seed, slot)
                )
                trial = study.ask(config.space.distributions())
                trial.set_user_attr("job", trial_name)
                hp = {**config.static, **{k: _text(v) for k, v in trial.params.items()}}
                self._jobs.transition(
                    trial_name, (JobStatus.PENDING,), JobStatus.PENDING, hyperparameters=hp
                )
                hook = PruningHook(trial, config.objective) if config.prunes else None
                done = self._training.run(
                    trial_name, stop, on_round=hook, cache=cache, stage_only=True
                )
                value = done.metrics.get(config.objective)
                state = optuna.trial.TrialState
                completed = done.status is JobStatus.COMPLETED
                if completed and value is not None and math.isfinite(value):
                    study.tell(trial, value)
                elif hook is not None and hook.pruned:
                    study.tell(trial, state=state.PRUNED)
                else:
                    study.tell(trial, state=state.FAIL)
                ran += 1
        return ran

    def _claim(self, job: Job, config: TuningConfig, start: int) -> tuple[str, int] | None:
        """Create the next free trial job (its unique name is the claim)."""
        spec = {**config.training, "aliases": [], "tuning_job": job.name}
        for slot in range(start, config.max_trials):
            name = f"{job.name}-{slot:03d}"
            try:
                self._jobs.create_job(
                    Job(
                        name=name,
                        kind=JobKind.TRAINING,
                        model_name=job.model_name,
                        status=JobStatus.PENDING,
                        spec={**spec, "trial": slot},
                        hyperparameters={},
                        created_at=_now(),
                        parent=job.name,
                        pid=os.getpid(),
                        host=self._host,
                    )
                )
            except AlreadyExists:
                continue
            return name, slot
        return None


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _trial(job: Job, config: TuningConfig) -> Trial:
    state = job.status.value
    if job.status is JobStatus.STOPPED and (job.failure_reason or "").startswith("pruned"):
        state = "Pruned"
    value = job.metrics.get(config.objective) if job.status is JobStatus.COMPLETED else None
    if value is not None and not math.isfinite(value):
        value = None
    return Trial(job, state, value)


def _best(trials: Sequence[Trial], config: TuningConfig) -> Trial | None:
    best: Trial | None = None
    for trial in trials:
        if trial.value is None:
            continue
        if best is None or config.better(trial.value, best.value):  # type: ignore[arg-type]
            best = trial
    return best


def _missing_objective(trials: Sequence[Trial], config: TuningConfig) -> str | None:
    """The reason to give up when a completed trial does not report the objective at all."""
    for trial in trials:
        if trial.job.status is JobStatus.COMPLETED and config.objective not in trial.job.metrics:
            known = ", ".join(sorted(trial.job.metrics)) or "none"
            return (
                f"the objective {config.objective!r} is not among the metrics trial "
                f"{trial.name} reported ({known})"
            )
    return None


def _terminate(runners: set[int]) -> None:
    """SIGTERM the runners (they stop their trial and exit), waiting for them; SIGKILL after
    a grace period."""
    for pid in runners:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_S
    while any(_alive(p) for p in runners) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in runners:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
            _alive(pid)  # reap it
