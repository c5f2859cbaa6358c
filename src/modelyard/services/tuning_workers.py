"""The processes of a tuning job: its coordinator and its trial runners.

- The coordinator (``python -m modelyard.worker JOB``) creates the Optuna study in the metadata
  database, keeps ``parallel`` trial runners alive, notices a runner that died (its trial is
  marked Failed, not left running), and at the end registers the best trial's model.
- Each trial runner (forked from the coordinator, ``processes.fork_helper``; or
  ``modelyard tune join JOB`` anywhere) claims the next trial slot (a
  trial job whose name is unique, so two runners on any machines never take the same one),
  asks the study for hyperparameters, trains in-process (datasets read once per runner),
  reports each round for pruning and tells the study the result.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.domain import Job, JobKind, JobStatus, ModelVersion, Source, StagedModel
from modelyard.errors import AlreadyExists, Conflict, JobFailed, ModelyardError
from modelyard.processes import exit_code, terminate_all
from modelyard.services.job_liveness import Heartbeat, beat_interval, not_reporting
from modelyard.services.jobs import JobService
from modelyard.services.registry import RegistryService
from modelyard.services.training import TrainingService
from modelyard.services.tuning_records import (
    ACTIVE,
    Trial,
    TuningConfig,
    TuningSummary,
    missing_objective,
    trial_of,
)
from modelyard.storage.base import JobStore
from modelyard.training.joblog import JobLog
from modelyard.tuning.preload import preload
from modelyard.tuning.strategies import grid_point

if TYPE_CHECKING:
    import optuna

#: How long stopped runners get to finish their trial's clean-up before they are killed.
_STOP_GRACE_S = 60.0
#: Runners in a row that may exit with an error before running any trial.
_MAX_IDLE_CRASHES = 3


def _now() -> datetime:
    return datetime.now(UTC)


class TuningWorkers:
    """What runs inside a tuning job's worker processes (the tuning service delegates here)."""

    def __init__(
        self,
        jobs: JobService,
        training: TrainingService,
        registry: RegistryService,
        study_url: str,
        poll_s: float,
        stale_s: float,
        start_runner: Callable[[str], int],
    ) -> None:
        self._start_runner = start_runner
        self._lifecycle = jobs
        self._jobs = jobs.store
        self._stale_s = stale_s
        self._beat_s = beat_interval(stale_s)
        self._training = training
        self._registry = registry
        self._study_url = study_url
        self._host = jobs.host
        self._poll_s = poll_s

    def _trial_jobs(self, name: str, config: TuningConfig) -> list[Job]:
        return self._jobs.list_jobs(parent=name, limit=config.max_trials + 1)

    def summary(self, name: str) -> TuningSummary:
        """The tuning job and its trials, dead runners detected."""
        job = self._lifecycle.get(name)
        trials = self._trial_jobs(name, TuningConfig.of(job))
        return TuningSummary.of(job, [self._lifecycle.reconcile(t) for t in trials])

    # -- the coordinator ---------------------------------------------------------------------

    def coordinate(self, name: str, stop: threading.Event) -> Job:
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
        log_path = self._lifecycle.log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        runners: set[int] = set()
        with JobLog(log_path, self._lifecycle.log_limits) as log:  # bounded while it runs
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
                    # Runners are forked from this process: they start with these in memory.
                    preload(config.training)
                    self._supervise(name, config, study, stop, runners, log)
                    return self._finish(name, config, stop, log_path, log, study)
            except Exception as exc:  # the job failed; the coordinator must not crash
                terminate_all(runners, _STOP_GRACE_S, lambda: self._beat(name))
                reason = exc.message if isinstance(exc, ModelyardError) else f"{exc!r}"
                log.write(f"tuning failed: {reason}\n")
                return self._end(name, JobStatus.FAILED, log_path, failure_reason=reason)

    def _beat(self, name: str) -> None:
        """Stamp the tuning job's heartbeat while runners are being stopped (a store briefly
        unreachable is tried again at the next call)."""
        with contextlib.suppress(ModelyardError):
            self._jobs.heartbeat([name], _now())

    def _supervise(
        self,
        name: str,
        config: TuningConfig,
        study: optuna.Study,
        stop: threading.Event,
        runners: set[int],
        log: JobLog,
    ) -> None:
        """Keep ``config.parallel`` runners going until the trials are used up, the failure
        budget is spent, the objective turns out missing, or a stop is asked for. Trials whose
        runner died (here, or on another machine that stopped sending heartbeats) are failed.
        Runners elsewhere (``tune join``) take trials too; the job ends when theirs end."""
        spawned = crashed = 0
        stop_deadline: float | None = None
        seen: dict[str, tuple[Any, float]] = {}
        beat_due = 0.0
        while True:
            if time.monotonic() >= beat_due:  # runners stop if this stops moving
                self._jobs.heartbeat([name], _now())
                beat_due = time.monotonic() + self._beat_s
            for pid in list(runners):
                code = exit_code(pid)
                if code is None:
                    continue
                runners.discard(pid)
                # A runner that fails before it trains anything (its database, its imports)
                # would be replaced forever: give up after a few in a row.
                ran = any(
                    j.pid == pid and j.host == self._host for j in self._trial_jobs(name, config)
                )
                crashed = crashed + 1 if code != 0 and not ran else 0
                if crashed >= _MAX_IDLE_CRASHES:
                    raise JobFailed(
                        f"{crashed} trial runners in a row failed before running a trial "
                        f"(last exit code {code}); see the job log"
                    )
            jobs = self._trial_jobs(name, config)
            if self._fail_dead_trials(jobs, study, runners, log, seen):
                jobs = self._trial_jobs(name, config)
            trials = [trial_of(t, config) for t in jobs]
            active = [t.job for t in trials if t.job.status in ACTIVE]
            if stop.is_set() or self._jobs.get_job(name).status is JobStatus.STOPPING:
                stop.set()
                if runners:  # they stop their trial and exit; killed after a grace period
                    terminate_all(runners, _STOP_GRACE_S, lambda: self._beat(name))
                    runners.clear()
                    continue
                # Runners elsewhere notice the stop through their heartbeat.
                stop_deadline = stop_deadline or time.monotonic() + _STOP_GRACE_S
                if not active or time.monotonic() > stop_deadline:
                    return
                time.sleep(self._poll_s)
                continue
            failed = sum(1 for t in trials if t.state == JobStatus.FAILED.value)
            exhausted = (
                failed > config.max_failed_trials or missing_objective(trials, config) is not None
            )
            mine = sum(1 for j in active if j.host == self._host and j.pid in runners)
            unclaimed = config.max_trials - len(trials)
            wanted = 0 if exhausted else min(config.parallel, unclaimed + mine)
            if not runners and wanted == 0 and not active:
                return
            while len(runners) < wanted:
                if spawned >= config.parallel + config.max_trials:
                    raise JobFailed(
                        f"trial runner processes keep dying ({spawned} started); see the job log"
                    )
                runners.add(self._start_runner(name))
                spawned += 1
            time.sleep(self._poll_s)

    def _fail_dead_trials(
        self,
        trial_jobs: list[Job],
        study: optuna.Study,
        runners: set[int],
        log: JobLog,
        seen: dict[str, tuple[Any, float]],
    ) -> bool:
        """Fail active trials whose runner is gone, so none stays running forever: on this
        machine, a dead process; elsewhere, a heartbeat that has not moved for ``stale_s`` of
        this process's clock (``seen``: the last stamp of each and when it changed), so the
        other machine's clock does not matter. True if any was failed."""
        now = _now()
        tick = time.monotonic()
        dead: list[str] = []
        for job in trial_jobs:
            if job.status not in ACTIVE:
                continue
            if job.host == self._host:
                if job.pid in runners:
                    continue  # a runner of ours that is alive holds it
                ended = self._lifecycle.reconcile(job)  # fails it if its process is gone
                if ended.status.finished:
                    dead.append(job.name)
                    log.write(f"trial {job.name}: its runner (pid {job.pid}) died\n")
                continue
            stamp = (job.heartbeat_at, job.status)
            if job.name not in seen or seen[job.name][0] != stamp:
                seen[job.name] = (stamp, tick)
            silent = tick - seen[job.name][1]
            if silent < self._stale_s:
                continue
            reason = not_reporting(job, silent, "its trial runner")
            try:
                self._jobs.transition(
                    job.name, ACTIVE, JobStatus.FAILED, failure_reason=reason, ended_at=now
                )
            except Conflict:
                continue  # it finished just now
            dead.append(job.name)
            log.write(f"trial {job.name}: {reason}\n")
        if dead:
            _settle_study(study, self._jobs, only=set(dead))
        return bool(dead)

    def _finish(
        self,
        name: str,
        config: TuningConfig,
        stop: threading.Event,
        log_path: Path,
        log: JobLog,
        study: optuna.Study,
    ) -> Job:
        # Trials still active now have nobody to finish them (their runner elsewhere did not
        # stop in time); then a runner that died between recording its trial and telling the
        # study left the study's trial running: settle it from the trial job.
        for job in self._trial_jobs(name, config):
            if job.status in ACTIVE:
                with contextlib.suppress(Conflict):
                    self._jobs.transition(
                        job.name,
                        ACTIVE,
                        JobStatus.FAILED,
                        failure_reason="still running when the tuning job ended",
                        ended_at=_now(),
                    )
        _settle_study(study, self._jobs, objective=config.objective)
        summary = self.summary(name)
        failed = summary.count(JobStatus.FAILED.value)
        log.write(
            f"trials: {summary.count(JobStatus.COMPLETED.value)} completed, {failed} failed, "
            f"{summary.count('Pruned')} pruned, {summary.count(JobStatus.STOPPED.value)} stopped\n"
        )
        missing = missing_objective(summary.trials, config)
        if missing is not None:
            return self._end(name, JobStatus.FAILED, log_path, failure_reason=missing)
        if failed > config.max_failed_trials:
            last = next(t for t in reversed(summary.trials) if t.state == JobStatus.FAILED.value)
            # The last failure in full (with its log's tail): usually why they all failed.
            return self._end(
                name,
                JobStatus.FAILED,
                log_path,
                failure_reason=(
                    f"{failed} trials failed, more than the failure budget "
                    f"({config.max_failed_trials}); the last, {last.name}: "
                    f"{last.job.failure_reason or 'no reason recorded'}"
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
        return self._lifecycle.end_job(name, ACTIVE, status, log_path, **fields)

    # -- a trial runner ----------------------------------------------------------------------

    def run_trials(self, name: str, stop: threading.Event) -> int:
        """Claim and run trials of tuning job ``name`` until none is left, the job stops or
        its failure budget is spent. Returns how many trials this runner ran."""
        import optuna

        from modelyard.training.runner import DataCache
        from modelyard.tuning.strategies import make_sampler
        from modelyard.tuning.study import PruningHook, open_study

        job = self._jobs.get_job(name)
        config = TuningConfig.of(job)
        cache = DataCache()
        ran = 0
        beat = _Heartbeat(self._jobs, name, stop, self._beat_s, self._stale_s)
        with (
            open_study(
                self._study_url, name, direction=config.direction, pruner=config.pruner()
            ) as study,
            beat,
        ):
            while not stop.is_set():
                if self._jobs.get_job(name).status is not JobStatus.IN_PROGRESS:
                    break
                trials = [trial_of(t, config) for t in self._trial_jobs(name, config)]
                failed = sum(1 for t in trials if t.state == JobStatus.FAILED.value)
                if failed > config.max_failed_trials or missing_objective(trials, config):
                    break
                claimed = self._claim(job, config, len(trials))
                if claimed is None:
                    break
                trial_name, slot = claimed
                beat.current = trial_name
                if config.strategy == "grid":
                    # Each slot its own grid point (a seeded permutation): runners asking at
                    # the same moment never pick the same one. Enqueued points are taken
                    # once each, whichever runner takes them.
                    study.enqueue_trial(grid_point(config.space, config.seed, slot))
                study.sampler = make_sampler(config.strategy, config.space, config.seed, slot)
                trial = study.ask(config.space.distributions())
                trial.set_user_attr("job", trial_name)
                hp = {**config.static, **{k: _text(v) for k, v in trial.params.items()}}
                hook = PruningHook(trial, config.objective) if config.prunes else None
                try:
                    self._jobs.transition(
                        trial_name, (JobStatus.PENDING,), JobStatus.PENDING, hyperparameters=hp
                    )
                    done = self._training.run(
                        trial_name, stop, on_round=hook, cache=cache, stage_only=True
                    )
                except Conflict:
                    # Someone ended the trial under us (`jobs stop`, or the coordinator took
                    # this runner for dead): its record stands; go on with the next one.
                    done = self._jobs.get_job(trial_name)
                value = done.metrics.get(config.objective)
                state = optuna.trial.TrialState
                completed = done.status is JobStatus.COMPLETED
                # skip_if_finished: the coordinator may have settled it (it took this runner
                # for dead), and the trial job's record is what counts.
                if completed and value is not None and math.isfinite(value):
                    study.tell(trial, value, skip_if_finished=True)
                elif hook is not None and hook.pruned:
                    study.tell(trial, state=state.PRUNED, skip_if_finished=True)
                else:
                    study.tell(trial, state=state.FAIL, skip_if_finished=True)
                beat.current = None
                ran += 1
        return ran

    def _claim(self, job: Job, config: TuningConfig, start: int) -> tuple[str, int] | None:
        """Create the next free trial job (its unique name is the claim: two runners, on any
        machines, never take the same slot)."""
        spec = {**config.training, "aliases": [], "tuning_job": job.name}
        # From the number of trials claimed so far (the next free slot when they are dense),
        # then any slot left free below it.
        for slot in [*range(start, config.max_trials), *range(min(start, config.max_trials))]:
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


def _settle_study(
    study: optuna.Study, jobs: JobStore, only: set[str] | None = None, objective: str = ""
) -> None:
    """Tell the study how its still-running trials ended, from their trial jobs: ``only``
    those jobs (failed because their runner died), or every finished one."""
    import optuna

    state = optuna.trial.TrialState
    for trial in study.get_trials(deepcopy=False, states=(state.RUNNING,)):
        owner = trial.user_attrs.get("job")
        if only is not None and owner not in only:
            continue
        if owner is None:  # its runner died between asking and naming it: nobody owns it
            study.tell(trial.number, state=state.FAIL, skip_if_finished=True)
            continue
        try:
            job = jobs.get_job(owner)
        except ModelyardError:
            continue
        if not job.status.finished:
            continue
        value = job.metrics.get(objective) if job.status is JobStatus.COMPLETED else None
        if value is not None and math.isfinite(value):
            study.tell(trial.number, value, skip_if_finished=True)
        elif (job.failure_reason or "").startswith("pruned"):
            study.tell(trial.number, state=state.PRUNED, skip_if_finished=True)
        else:
            study.tell(trial.number, state=state.FAIL, skip_if_finished=True)


class _Heartbeat(Heartbeat):
    """A runner's sign of life: every ``interval_s`` it stamps the trial it runs (so a
    coordinator on another machine can tell a slow trial from a dead runner). It sets
    ``stop`` once the tuning job is no longer in progress (a stop reaches runners anywhere),
    or once the coordinator's own heartbeat has not moved for ``stale_s`` of this runner's
    clock (the coordinator died, and nobody would register the result)."""

    def __init__(
        self,
        jobs: JobStore,
        tuning_job: str,
        stop: threading.Event,
        interval_s: float,
        stale_s: float,
    ) -> None:
        super().__init__(interval_s)
        self.current: str | None = None
        self._jobs = jobs
        self._tuning_job = tuning_job
        self._stop = stop
        self._stale_s = stale_s
        self._last: Any = object()
        self._changed = time.monotonic()

    def beat(self) -> None:
        current = self.current
        if current is not None:
            self._jobs.heartbeat([current], _now())
        tuning = self._jobs.get_job(self._tuning_job)
        if tuning.heartbeat_at != self._last:
            self._last, self._changed = tuning.heartbeat_at, time.monotonic()
        silent = time.monotonic() - self._changed > self._stale_s
        if tuning.status is not JobStatus.IN_PROGRESS or silent:
            self._stop.set()


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
