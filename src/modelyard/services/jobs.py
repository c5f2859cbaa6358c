"""The job service: the lifecycle every kind of job shares.

A job (training, tuning, batch) is submitted by its own service, which validates the request
and records the job as Pending; this service then starts its worker process through the
launcher port, finds out when that process died (``reconcile``: an active job whose worker is
gone ends Failed, or Stopped if it was asked to stop), stops, waits for and reaps jobs, keeps
their logs, and — inside the worker — hands the job to the runner its kind registered
(:meth:`register`), so that ``modelyard.worker`` never branches on the kind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from modelyard.domain import Job, JobKind, JobStatus
from modelyard.domain.counts import limit_of
from modelyard.errors import (
    Claimed,
    Conflict,
    InvalidInput,
    JobFailed,
    JobNotFound,
    ModelyardError,
)
from modelyard.services.job_liveness import (
    JobHeartbeat,
    beat_interval,
    not_reporting,
    silent_for,
)
from modelyard.services.job_logs import JobLogs, check_line_counts
from modelyard.storage.base import ArtifactStore, JobStore
from modelyard.storage.filesystems import is_pattern
from modelyard.training.joblog import LogLimits

ACTIVE = (JobStatus.PENDING, JobStatus.IN_PROGRESS, JobStatus.STOPPING)

#: How long a job may stay Pending without a worker process before it is taken for dead (its
#: submitter was killed between recording it and starting its worker): launching takes well
#: under a second, so this only has to outlast a very slow machine, not a long job.
PENDING_GRACE_S = 300.0

T = TypeVar("T")


def now() -> datetime:
    return datetime.now(UTC)


class Processes(Protocol):
    """The launcher port: worker processes on this machine (``modelyard.processes``)."""

    def launch(self, args: Sequence[str], log_name: str) -> int:
        """Start ``python -m modelyard.worker *args`` with its output appended to the log
        ``log_name``; its pid. Raises OSError when it cannot start."""

    def alive(self, pid: int) -> bool:
        """Whether ``pid`` still runs (a zombie does not)."""

    def stop(self, pid: int) -> None:
        """Ask ``pid`` to stop (SIGTERM); a process already gone is fine."""

    def reap(self, pid: int) -> None:
        """Collect ``pid``'s exit status if this process started it, without blocking."""


@dataclass(frozen=True, slots=True)
class JobKindRunner:
    """What a kind of job does in its worker: ``run(name, stop)`` executes it there and
    returns its final state (never raising for a failure of the job itself). ``resume(job)``,
    for kinds that can resume, makes a stopped or failed job ready to run again (a batch job
    keeps the work it finished); None: the kind cannot resume. ``worker_args(job)``: options
    for its worker process (``python -m modelyard.worker``), such as ``--prestart``.
    ``beats_itself``: its run stamps the job's heartbeat itself (a tuning coordinator, from
    its loop: it forks, and no thread may hold a database connection across a fork); others
    get a heartbeat thread from the job service."""

    run: Callable[[str, threading.Event], Job]
    resume: Callable[[Job], None] | None = None
    worker_args: Callable[[Job], Sequence[str]] | None = None
    beats_itself: bool = False


class JobService:
    """Control plane of every job (the CLI, the Python API and later the REST API call it)."""

    def __init__(
        self,
        jobs: JobStore,
        artifacts: ArtifactStore,
        logs_dir: Path,
        processes: Processes,
        host: str,
        log_limits: LogLimits | None = None,
        stale_s: float = 60.0,
        check_model: Callable[[str], object] | None = None,
    ) -> None:
        """``check_model(name)`` raises ModelNotFound (or InvalidName) for a model the
        registry does not know; without it, listing by model refuses no name."""
        self._jobs = jobs
        self._check_model = check_model
        self._stale_s = stale_s
        self._logs = JobLogs(artifacts, logs_dir, log_limits or LogLimits())
        self._processes = processes
        self._host = host
        self._kinds: dict[JobKind, JobKindRunner] = {}

    @property
    def store(self) -> JobStore:
        """The job store, for the services of each kind (they create and update their jobs)."""
        return self._jobs

    @property
    def host(self) -> str:
        return self._host

    @property
    def stale_s(self) -> float:
        """How long a job on another machine may go without a heartbeat before it is taken
        for dead; its worker stamps it every ``beat_interval(stale_s)``."""
        return self._stale_s

    def register(self, kind: JobKind, runner: JobKindRunner) -> None:
        """Say how jobs of ``kind`` run (bootstrap registers each kind once)."""
        self._kinds[kind] = runner

    # -- starting ----------------------------------------------------------------------------

    def claiming(self, take: Callable[[], T]) -> T:
        """Run ``take``, which takes a claim (creates or resumes a job holding it); when the
        holder is a job whose worker died unnoticed, end that job (as :meth:`get` does) and
        try once more, so a dead job's claim does not wait for someone to look at it.

        Raises:
            Claimed: a job that is still active holds the claim.
        """
        try:
            return take()
        except Claimed as exc:
            if not exc.holder or not self._ended(exc.holder):
                raise
        return take()

    def _ended(self, name: str) -> bool:
        try:
            return self.get(name).status.finished
        except JobNotFound:
            return True

    def launch(self, created: Job) -> Job:
        """Start the worker process of a job just created (Pending), with the options its
        kind asks for; a job whose worker cannot start ends Failed, with the reason."""
        runner = self._kinds.get(created.kind)
        try:
            options = runner.worker_args(created) if runner and runner.worker_args else ()
            pid = self._processes.launch([*options, created.name], created.name)
        except (OSError, ModelyardError) as exc:
            return self._not_started(created.name, str(exc))
        except BaseException as exc:
            # Anything else (a bug, an interrupt) is the caller's to see; but the job must not
            # stay Pending with nobody to run it, holding what it claimed (a batch output).
            with contextlib.suppress(ModelyardError):
                self._not_started(created.name, f"{type(exc).__name__}: {exc}")
            raise
        try:
            return self._jobs.transition(
                created.name,
                (JobStatus.PENDING,),
                JobStatus.PENDING,
                pid=pid,
                host=self._host,
                beat=True,  # silence counts from here, on the store's clock
            )
        except Conflict:
            # The worker was quicker (forked from a preloaded coordinator, it can be): it took
            # the job, with its own pid and host, or even ended it. The job is its now.
            job = self.get(created.name)
            if job.status is JobStatus.PENDING:
                raise
            return job

    def _not_started(self, name: str, why: str) -> Job:
        return self._jobs.transition(
            name,
            (JobStatus.PENDING,),
            JobStatus.FAILED,
            failure_reason=f"could not start the worker process: {why}",
            ended_at=now(),
        )

    def run(self, name: str, stop: threading.Event) -> Job:
        """Execute job ``name`` in this (worker) process with the runner of its kind, which
        stamps the job's heartbeat while it runs (so that it is not taken for dead from
        another machine) and stops it if the job is asked to stop from another machine."""
        job = self._jobs.get_job(name)
        runner = self._kinds.get(job.kind)
        if runner is None:
            raise InvalidInput(f"job {name!r} is of kind {job.kind.value!r}, which cannot run here")
        try:
            if unstarted := self._end_if_stopped_unstarted(name):
                return unstarted
            if runner.beats_itself:
                return runner.run(name, stop)
            with JobHeartbeat(self._jobs, name, stop, beat_interval(self._stale_s), self._host):
                return runner.run(name, stop)
        except Conflict:
            # Asked to stop between our look and the runner taking it (Pending -> InProgress).
            if unstarted := self._end_if_stopped_unstarted(name):
                return unstarted
            raise

    def _end_if_stopped_unstarted(self, name: str) -> Job | None:
        """End job ``name`` Stopped if it was asked to stop before any worker took it (its
        worker was starting: a stop then leaves it Stopping with no start time, and the
        runner's Pending -> InProgress step would be refused); else None. A job another
        worker was launched for since (a resumption elsewhere) is not this one's to end."""
        job = self._jobs.get_job(name)
        if job.status is not JobStatus.STOPPING or job.started_at is not None:
            return None
        if job.pid is not None and (job.pid, job.host) != (os.getpid(), self._host):
            return None
        try:
            return self.end_job(
                name,
                (JobStatus.STOPPING,),
                JobStatus.STOPPED,
                self.log_path(name),
                failure_reason="stopped before it started",
            )
        except Conflict:  # ended meanwhile (taken for dead): its record stands
            return self._jobs.get_job(name)

    def resume(self, name: str) -> Job:
        """Run a Failed or Stopped job again in a new worker, keeping what it finished.

        Raises:
            JobNotFound; InvalidInput: its kind cannot resume; Conflict: it is still active
            or completed; Claimed: an active job holds what it claimed (a batch job's output).
        """
        job = self.get(name)
        runner = self._kinds.get(job.kind)
        if runner is None or runner.resume is None:
            raise InvalidInput(f"job {name!r} is a {job.kind.value} job, which cannot be resumed")
        if job.status not in (JobStatus.FAILED, JobStatus.STOPPED):
            raise Conflict(
                f"job {name!r} is {job.status.value}; only a Failed or Stopped job can resume"
            )
        runner.resume(job)
        try:
            pending = self.claiming(
                lambda: self._jobs.transition(
                    name,
                    (job.status,),
                    JobStatus.PENDING,
                    failure_reason=None,
                    ended_at=None,
                    started_at=None,
                    pid=None,
                    beat=True,  # its Pending grace starts now, on the store's clock
                )
            )
        except Claimed as exc:
            raise Claimed(
                f"job {name!r} cannot resume while job {exc.holder!r}, still active, writes "
                "the same output; wait for it to end or stop it",
                holder=exc.holder,
            ) from None
        self._logs.restore(job, f"--- resumed at {now().isoformat(timespec='seconds')} ---\n")
        return self.launch(pending)

    # -- reading -----------------------------------------------------------------------------

    def get(self, name: str) -> Job:
        """A job, with a dead worker detected. Raises JobNotFound."""
        return self.reconcile(self._jobs.get_job(name))

    def list_jobs(
        self, model_name: str | None = None, limit: int = 100, kind: JobKind | None = None
    ) -> list[Job]:
        """Newest first, at most ``limit``, dead workers detected.

        Raises:
            InvalidInput: ``limit`` is not from 1 to ``MAX_LIMIT``.
            ModelNotFound, InvalidName: ``model_name`` names neither a registered model nor
                the model of any job (a first training names its model before it exists).
        """
        found = self._jobs.list_jobs(model_name=model_name, kind=kind, limit=limit_of(limit))
        if model_name is not None and not found:
            self._check_known_model(model_name, kind)
        return [self.reconcile(j) for j in found]

    def _check_known_model(self, name: str, kind: JobKind | None) -> None:
        """Refuse ``name`` (no job of ``kind`` names it) unless the registry or a job of
        another kind knows it."""
        if self._check_model is None:
            return
        if kind is not None and self._jobs.list_jobs(model_name=name, limit=1):
            return
        self._check_model(name)

    def log_path(self, name: str) -> Path:
        """Where the worker writes the job's log on this machine."""
        return self._logs.path(name)

    @property
    def log_limits(self) -> LogLimits:
        """How much of a job's log is kept (its head and tail), for every kind of job."""
        return self._logs.limits

    def last_lines(self, name: str) -> str:
        """The last lines of the job's live log on this machine ('' if none)."""
        return self._logs.last_lines(name)

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
        """End an active job that nothing runs any more: Failed (or Stopped, if it was asked
        to stop) when its worker process on this host is gone, or when its worker on another
        host has not sent a heartbeat for ``stale_s`` (see :mod:`.job_liveness`: that host
        or process died, and nobody there would notice); Failed when it has stayed
        Pending without a worker process for :data:`PENDING_GRACE_S` (whoever submitted it
        died before starting one)."""
        if job.status not in ACTIVE:
            return job
        if job.pid is None:
            if job.status is not JobStatus.PENDING:
                return job
            waited = (now() - job.last_seen).total_seconds()
            if waited < PENDING_GRACE_S:
                return job
            reason = (
                f"no worker process started in {waited:.0f} s: whoever submitted it stopped "
                "before starting one"
            )
            return self._end_dead(job, JobStatus.FAILED, reason, (JobStatus.PENDING,))
        if job.host != self._host:
            silent = self._silent_elsewhere(job)
            if silent is None:
                return job
            reason = not_reporting(job, silent)
        elif self._processes.alive(job.pid):
            return job
        else:
            reason = f"the worker process (pid {job.pid}) ended without finishing the job"
        if job.status is JobStatus.STOPPING:  # it was asked to stop, and it did
            return self._end_dead(job, JobStatus.STOPPED, "stopped by request")
        return self._end_dead(job, JobStatus.FAILED, reason)

    def _silent_elsewhere(self, job: Job) -> float | None:
        """How long ``job``, whose worker runs on another machine, has been silent, if for
        longer than ``stale_s`` (then it is dead); else None."""
        silent = silent_for(job, self._jobs.clock())
        return silent if silent >= self._stale_s else None

    def _end_dead(
        self, job: Job, outcome: JobStatus, reason: str, allowed: tuple[JobStatus, ...] = ACTIVE
    ) -> Job:
        last = self._logs.last_lines(job.name)
        try:
            return self.end_job(
                job.name,
                allowed,
                outcome,
                self.log_path(job.name),
                failure_reason=_with_tail(reason, last),
            )
        except Conflict:  # it finished while we looked
            return self._jobs.get_job(job.name)

    # -- stopping and ending -----------------------------------------------------------------

    def stop(self, name: str) -> Job:
        """Ask a job to stop. A Pending job stops at once; a running one is signalled and
        confirms (Stopped) when its worker has cleaned up; one whose worker cannot be
        signalled (on another host that stopped reporting) stops at once. Raises Conflict if
        it finished."""
        job = self._jobs.get_job(name)
        if job.status in ACTIVE and job.pid is not None and job.host != self._host:
            silent = self._silent_elsewhere(job)
            if silent is not None:
                reason = f"stopped by request; {not_reporting(job, silent)}"
                return self._end_dead(job, JobStatus.STOPPED, reason)
        job = self.reconcile(job)
        if job.status.finished:
            raise Conflict(f"job {name!r} already ended ({job.status.value})")
        if job.status is JobStatus.PENDING and job.pid is None:
            return self._jobs.transition(
                name,
                (JobStatus.PENDING,),
                JobStatus.STOPPED,
                failure_reason="stopped before it started",
                ended_at=now(),
            )
        stopping = self._jobs.transition(name, ACTIVE, JobStatus.STOPPING)
        if job.pid is not None and job.host == self._host and self._processes.alive(job.pid):
            self._processes.stop(job.pid)
        return stopping

    def end_job(
        self,
        name: str,
        allowed: tuple[JobStatus, ...],
        to: JobStatus,
        log_path: Path,
        *,
        pid_is: int | None = None,
        **fields: Any,
    ) -> Job:
        """End a job: store its log (capped to its head and tail) in the artifact store, record
        the final state pointing at it, and only then remove the live log, so that the log is
        stored once and is never missing from both places. If the store cannot take the log,
        the capped log stays on this machine. ``pid_is``: the worker process ending its own
        run (a worker taken for dead must not end the run a resumption started).

        Raises:
            Conflict: the job is no longer in one of ``allowed``, or another worker runs it
            now (the live log is kept).
        """
        digest = self._logs.keep(log_path)
        ended = self._jobs.transition(
            name, allowed, to, pid_is=pid_is, log_digest=digest, ended_at=now(), **fields
        )
        if digest is not None:
            self._logs.discard(log_path)
        return ended

    def end_failed(self, job: Job, exc: BaseException, stop: threading.Event) -> Job:
        """End a job whose run (in this worker process) raised ``exc``: Stopped if a stop was
        asked for, else Failed with the error and the last lines of its log."""
        log_path = self.log_path(job.name)
        last = self._logs.last_lines(job.name)
        mine = os.getpid()
        if stop.is_set():
            return self.end_job(
                job.name,
                ACTIVE,
                JobStatus.STOPPED,
                log_path,
                pid_is=mine,
                failure_reason="stopped by request",
            )
        reason = exc.message if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
        return self.end_job(
            job.name,
            ACTIVE,
            JobStatus.FAILED,
            log_path,
            pid_is=mine,
            failure_reason=_with_tail(reason, last),
        )

    def wait(self, name: str, timeout_s: float | None = None, poll_s: float = 0.1) -> Job:
        """Block until the job ends (or the timeout passes); returns its latest state.

        It reads the job every ``poll_s`` (a row by its key: ~10 small reads a second), so a
        caller learns of the end within a tenth of a second; at 0.5 s a 3-second batch job
        took 8% longer for its caller (measured, 1M rows)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.get(name)
            if job.status.finished:
                if job.pid is not None and job.host == self._host:
                    # A long-lived caller (a notebook, a service) must not collect zombies.
                    self._processes.reap(job.pid)
                return job
            if deadline is not None and time.monotonic() > deadline:
                return job
            time.sleep(poll_s)


def failure_of(job: Job) -> JobFailed | None:
    """The error for a job that ended without completing (Failed, Stopped), else None: its
    first line of reason, for the CLI and the Python API alike."""
    if not job.status.finished or job.status is JobStatus.COMPLETED:
        return None
    what = "job" if job.kind is JobKind.TRAINING else f"{job.kind.value} job"
    reason = (job.shown_failure_reason or "no reason recorded").splitlines()[0]
    return JobFailed(f"{what} {job.name} {job.status.value.lower()}: {reason}")


#: The longest job name (a name anywhere in the product is 128 characters at most).
MAX_JOB_NAME = 128


def job_name(model_name: str, kind: str = "") -> str:
    """A new job's name: the model (cut short if need be), what it is, a timestamp and a
    random suffix, in :data:`MAX_JOB_NAME` characters (a batch job of a model with a
    110-character name once got a name its own output folder refused)."""
    stamp = now().strftime("%Y%m%d-%H%M%S")
    middle = f"-{kind}" if kind else ""
    suffix = f"{middle}-{stamp}-{secrets.token_hex(2)}"
    return f"{model_name[: MAX_JOB_NAME - len(suffix)]}{suffix}"


#: The longest name the SageMaker SDK's ``name_from_base`` makes (SageMaker's job names).
SDK_NAME_LENGTH = 63


def name_from_base(base: str) -> str:
    """A new job's name as the SageMaker SDK makes one from a prefix (its ``name_from_base``):
    ``base``, cut short if need be, then the UTC time to the millisecond
    (``nightly-2026-12-03-04-05-06-789``), in :data:`SDK_NAME_LENGTH` characters."""
    moment = now()
    stamp = f"{moment:%Y-%m-%d-%H-%M-%S}-{moment.microsecond // 1000:03d}"
    return f"{base[: SDK_NAME_LENGTH - len(stamp) - 1]}-{stamp}"


def check_exists(channel: str, uri: str) -> None:
    """Raises InvalidInput when the ``channel`` data at ``uri`` is missing or unreadable."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri)
        found = fs.glob(path) if is_pattern(fs, path) else fs.exists(path)
    except (OSError, ValueError, ImportError) as exc:
        raise InvalidInput(f"cannot read the {channel} data {uri}: {exc}") from None
    if not found:
        raise InvalidInput(f"the {channel} data {uri} does not exist")


def _with_tail(reason: str, last: str) -> str:
    return f"{reason}\n--- last lines of the log ---\n{last}" if last else reason
