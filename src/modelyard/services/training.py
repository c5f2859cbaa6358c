"""The training service: submit, run, watch and stop training jobs.

A job is submitted here (validated, recorded as Pending) and handed to a launcher that starts a
worker process; the worker calls :meth:`TrainingService.run`, which moves the job through
InProgress to Completed (registering a model version), Failed (with the reason and the tail of
its log) or Stopped. A job whose worker died is found out by :meth:`reconcile` and marked
Failed, so nothing stays "in progress" forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.domain import Job, JobKind, JobStatus, ModelVersion, Source, Trust, validate_name
from modelyard.domain.references import validate_text
from modelyard.errors import Conflict, InvalidInput, JobFailed, ModelyardError
from modelyard.services.job_logs import JobLogs, check_line_counts
from modelyard.services.registry import RegistryService
from modelyard.storage.base import ArtifactStore, JobStore
from modelyard.training.joblog import LogLimits

if TYPE_CHECKING:
    from modelyard.training.runner import DataCache, RoundHook, TrainingOutcome

#: ``launch(worker_args, log_name)`` starts ``python -m modelyard.worker *worker_args`` with
#: its output appended to the log ``log_name``; returns its pid.
Launcher = Callable[[Sequence[str], str], int]

_ACTIVE = (JobStatus.PENDING, JobStatus.IN_PROGRESS, JobStatus.STOPPING)


def _now() -> datetime:
    return datetime.now(UTC)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a child of ours that ended is reaped; a zombie is dead)."""
    try:  # our own child (this process launched it): reap it if it has ended
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: look it up instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (finished, not yet reaped) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class TrainingService:
    """Control plane of training jobs (the CLI, the Estimator and later the REST API call it)."""

    def __init__(
        self,
        jobs: JobStore,
        registry: RegistryService,
        artifacts: ArtifactStore,
        logs_dir: Path,
        launcher: Launcher,
        host: str,
        log_limits: LogLimits | None = None,
    ) -> None:
        self._jobs = jobs
        self._registry = registry
        self._artifacts = artifacts
        self._logs = JobLogs(artifacts, logs_dir, log_limits or LogLimits())
        self._launch = launcher
        self._host = host

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
    ) -> Job:
        """Validate a training request, record it as a Pending job and start its worker.

        Exactly one of ``algorithm`` (a built-in) and ``script`` (a SageMaker script-mode
        training script) is given. Raises InvalidInput / InvalidName naming what is wrong;
        nothing is recorded then.
        """
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
            name=job_name(model_name),
            kind=JobKind.TRAINING,
            model_name=model_name,
            status=JobStatus.PENDING,
            spec=spec,
            hyperparameters={k: str(v) for k, v in hp.items()},
            created_at=_now(),
        )
        return self.launch(self._jobs.create_job(job))

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
            InvalidInput, InvalidName: naming what is wrong.
        """
        validate_name(model_name)
        for alias in aliases:
            validate_name(alias, "alias")
        validate_text(description, "description")
        for key in hyperparameters or {}:
            # They become the version's params, whose names the registry checks: refuse now,
            # not after the whole job has trained.
            validate_name(str(key), "hyperparameter name")
        if (algorithm is None) == (script is None):
            raise InvalidInput("give exactly one of --algorithm and --script")
        hp = {str(k): v for k, v in (hyperparameters or {}).items()}
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

    def launch(self, created: Job, worker_args: Sequence[str] = ()) -> Job:
        """Start the worker process of a job just created (Pending); a job whose worker
        cannot start ends Failed, with the reason."""
        try:
            pid = self._launch([*worker_args, created.name], created.name)
        except OSError as exc:
            return self._jobs.transition(
                created.name,
                (JobStatus.PENDING,),
                JobStatus.FAILED,
                failure_reason=f"could not start the worker process: {exc}",
                ended_at=_now(),
            )
        return self._jobs.transition(
            created.name, (JobStatus.PENDING,), JobStatus.PENDING, pid=pid, host=self._host
        )

    # -- reading -----------------------------------------------------------------------------

    def get(self, name: str) -> Job:
        """A job, with a dead worker detected. Raises JobNotFound."""
        return self.reconcile(self._jobs.get_job(name))

    def list_jobs(
        self, model_name: str | None = None, limit: int = 100, kind: JobKind | None = None
    ) -> list[Job]:
        """Newest first, dead workers detected."""
        found = self._jobs.list_jobs(model_name=model_name, kind=kind, limit=limit)
        return [self.reconcile(j) for j in found]

    def log_path(self, name: str) -> Path:
        """Where the worker writes the job's log on this machine."""
        return self._logs.path(name)

    @property
    def log_limits(self) -> LogLimits:
        """How much of a job's log is kept (its head and tail), for every kind of job."""
        return self._logs.limits

    def logs(self, name: str) -> str:
        """The job's whole log (bounded: see :meth:`read_log`). Raises JobNotFound."""
        return "".join(self.read_log(name))

    def read_log(
        self, name: str, *, head: int | None = None, tail: int | None = None
    ) -> Iterator[str]:
        """The job's log in chunks: the live file on this machine while the job runs, else
        the copy kept in the store. A long log holds its first and last bytes and a marker
        line saying how much was cut between them.

        Args:
            head: Only its first ``head`` lines.
            tail: Only its last ``tail`` lines.

        Raises:
            JobNotFound: no such job (before anything is returned).
            InvalidInput: a negative number of lines, or both ``head`` and ``tail``.
        """
        check_line_counts(head, tail)
        return self._logs.read(self._jobs.get_job(name), head, tail)

    def follow_log(
        self, name: str, *, tail: int | None = None, poll_s: float = 0.5
    ) -> Iterator[str]:
        """The job's log as it grows, in chunks, until the job ends (from its last ``tail``
        lines if given). Output cut from a long log before it could be shown is replaced by a
        line saying how much.

        Raises:
            JobNotFound: no such job (before anything is returned).
            InvalidInput: a negative ``tail``.
        """
        check_line_counts(tail=tail)
        self._jobs.get_job(name)
        return self._logs.follow(lambda: self.get(name), tail, poll_s)

    def reconcile(self, job: Job) -> Job:
        """Mark an active job Failed when its worker process on this host is gone."""
        if job.status not in _ACTIVE or job.pid is None or job.host != self._host:
            return job
        if process_alive(job.pid):
            return job
        if job.status is JobStatus.STOPPING:  # it was asked to stop, and it did
            outcome, reason = JobStatus.STOPPED, "stopped by request"
        else:
            outcome = JobStatus.FAILED
            reason = f"the worker process (pid {job.pid}) ended without finishing the job"
        last = self._logs.last_lines(job.name)
        try:
            return self.end_job(
                job.name,
                _ACTIVE,
                outcome,
                self.log_path(job.name),
                failure_reason=_with_tail(reason, last),
            )
        except Conflict:  # it finished while we looked
            return self._jobs.get_job(job.name)

    # -- stopping ----------------------------------------------------------------------------

    def stop(self, name: str) -> Job:
        """Ask a job to stop. A Pending job stops at once; a running one is signalled and
        confirms (Stopped) when its worker has cleaned up. Raises Conflict if it finished."""
        job = self.get(name)
        if job.status.finished:
            raise Conflict(f"job {name!r} already ended ({job.status.value})")
        if job.status is JobStatus.PENDING and job.pid is None:
            return self._jobs.transition(
                name,
                (JobStatus.PENDING,),
                JobStatus.STOPPED,
                failure_reason="stopped before it started",
                ended_at=_now(),
            )
        stopping = self._jobs.transition(name, _ACTIVE, JobStatus.STOPPING)
        if job.pid is not None and job.host == self._host and process_alive(job.pid):
            os.kill(job.pid, signal.SIGTERM)
        return stopping

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

        job = self._jobs.transition(
            name,
            (JobStatus.PENDING,),
            JobStatus.IN_PROGRESS,
            pid=os.getpid(),
            host=self._host,
            started_at=_now(),
        )
        log_path = self.log_path(name)
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
                log_limits=self._logs.limits,
            )
        except EarlyStopped as exc:
            return self.end_job(name, _ACTIVE, JobStatus.STOPPED, log_path, failure_reason=str(exc))
        except Exception as exc:  # the job failed; the worker itself must not crash
            return self._finish_failed(job, log_path, exc, stop)
        return self.end_job(
            name,
            (JobStatus.IN_PROGRESS, JobStatus.STOPPING),
            JobStatus.COMPLETED,
            log_path,
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

    def _finish_failed(
        self, job: Job, log_path: Path, exc: BaseException, stop: threading.Event
    ) -> Job:
        last = self._logs.last_lines(job.name)
        if stop.is_set():
            return self.end_job(
                job.name, _ACTIVE, JobStatus.STOPPED, log_path, failure_reason="stopped by request"
            )
        reason = exc.message if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
        return self.end_job(
            job.name, _ACTIVE, JobStatus.FAILED, log_path, failure_reason=_with_tail(reason, last)
        )

    def end_job(
        self,
        name: str,
        allowed: tuple[JobStatus, ...],
        to: JobStatus,
        log_path: Path,
        **fields: Any,
    ) -> Job:
        """End a job: store its log (capped to its head and tail) in the artifact store, record
        the final state pointing at it, and only then remove the live log, so that the log is
        stored once and is never missing from both places. If the store cannot take the log,
        the capped log stays on this machine.

        Raises:
            Conflict: the job is no longer in one of ``allowed`` (the live log is kept).
        """
        digest = self._logs.keep(log_path)
        ended = self._jobs.transition(
            name, allowed, to, log_digest=digest, ended_at=_now(), **fields
        )
        if digest is not None:
            self._logs.discard(log_path)
        return ended

    def wait(self, name: str, timeout_s: float | None = None, poll_s: float = 0.5) -> Job:
        """Block until the job ends (or the timeout passes); returns its latest state."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.get(name)
            if job.status.finished:
                self._reap(job)
                return job
            if deadline is not None and time.monotonic() > deadline:
                return job
            time.sleep(poll_s)

    def _reap(self, job: Job) -> None:
        """Collect the exit status of a finished job's worker if this process started it (a
        long-lived caller, a notebook or a service, must not collect zombies), without
        waiting for it: it records the end just before it exits."""
        if job.pid is None or job.host != self._host:
            return
        try:
            if os.waitpid(job.pid, os.WNOHANG)[0] == job.pid:
                return
        except ChildProcessError:
            return  # not our child, or already collected
        threading.Thread(target=_wait_quietly, args=(job.pid,), daemon=True).start()

    def registered_version(self, job: Job) -> ModelVersion | None:
        """The model version a completed job registered."""
        if job.model_version is None:
            return None
        return self._registry.get_version(f"{job.model_name}:{job.model_version}")


def failure_of(job: Job) -> JobFailed | None:
    """The error for a job that ended without completing (Failed, Stopped), else None: its
    first line of reason, for the CLI and the Python API alike."""
    if not job.status.finished or job.status is JobStatus.COMPLETED:
        return None
    what = "tuning job" if job.kind is JobKind.TUNING else "job"
    reason = (job.failure_reason or "no reason recorded").splitlines()[0]
    return JobFailed(f"{what} {job.name} {job.status.value.lower()}: {reason}")


def _wait_quietly(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # somebody else collected it
        os.waitpid(pid, 0)


def job_name(model_name: str, kind: str = "") -> str:
    """A new job's name: the model, what it is, a timestamp and a random suffix."""
    stamp = _now().strftime("%Y%m%d-%H%M%S")
    middle = f"-{kind}" if kind else ""
    return f"{model_name}{middle}-{stamp}-{secrets.token_hex(2)}"


def _with_tail(reason: str, last: str) -> str:
    return f"{reason}\n--- last lines of the log ---\n{last}" if last else reason


def _absolute(uri: str) -> str:
    return uri if "://" in uri else str(Path(uri).absolute())


def check_exists(channel: str, uri: str) -> None:
    """Raises InvalidInput when the ``channel`` data at ``uri`` is missing or unreadable."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri)
        found = fs.glob(path) if any(c in path for c in "*?[") else fs.exists(path)
    except (OSError, ValueError, ImportError) as exc:
        raise InvalidInput(f"cannot read the {channel} data {uri}: {exc}") from None
    if not found:
        raise InvalidInput(f"the {channel} data {uri} does not exist")
