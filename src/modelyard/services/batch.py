"""The batch service: batch transform jobs (SageMaker's CreateTransformJob, on this machine).

``submit`` checks the whole request before anything runs — the model reference resolves to one
version, the inputs exist and are not empty, the filters and options are valid, no output
would be overwritten unless asked, and the output location is writable — then records a
Pending batch job and starts its worker. In the worker, :meth:`BatchService.run` hands the
request to the batch engine (:func:`modelyard.batch.transform`) and keeps the job's counts
(rows in, out and failed; files done) up to date while it runs. A Failed or Stopped job can be
resumed (:meth:`JobService.resume`): the engine's manifest says which work units finished,
and only the rest are done again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.domain import Job, JobKind, JobStatus, ModelRef, ModelSpec
from modelyard.domain.batch import BatchCounts, BatchExecutor, Compression, TransformRequest
from modelyard.domain.references import validate_name
from modelyard.errors import Claimed, Conflict, InvalidInput, ModelyardError, NotFound
from modelyard.redaction import redact
from modelyard.services.jobs import JobKindRunner, JobService, job_name, name_from_base, now
from modelyard.services.registry import RegistryService
from modelyard.storage.base import ArtifactStore
from modelyard.training.joblog import JobLog

if TYPE_CHECKING:
    from modelyard.batch.executor import Executor

#: How often a running job's counts are written to the store (and a log line).
_REPORT_EVERY_S = 1.0


class BatchService:
    """Control plane of batch transform jobs (the CLI, ``Transformer`` and schedules call it).

    Args:
        jobs: The job service (lifecycle, logs, worker processes).
        registry: Resolves model references.
        artifacts: The artifact store (it must pickle: the engine's worker processes load the
            model through a copy).
        scratch: A local folder where workers materialise model packages.
    """

    def __init__(
        self,
        jobs: JobService,
        registry: RegistryService,
        artifacts: ArtifactStore,
        scratch: Path,
    ) -> None:
        self._jobs = jobs
        self._registry = registry
        self._artifacts = artifacts
        self._scratch = scratch

    def runner(self) -> JobKindRunner:
        """How the job service runs and resumes batch jobs."""
        return JobKindRunner(self.run, resume=self._check_resumable, worker_args=_worker_args)

    # -- submitting --------------------------------------------------------------------------

    def check(self, request: TransformRequest) -> ModelSpec:
        """Validate ``request`` as :meth:`submit` does, without starting anything; the
        version it would run.

        Raises:
            InvalidInput (naming the option), ModelNotFound / VersionNotFound /
            AliasNotFound, AlreadyExists (an output exists and ``overwrite`` is off),
            StorageNotWritable (the output location cannot be written).
        """
        with _secrets_hidden(request):
            return self._check(request)

    def _check(self, request: TransformRequest) -> ModelSpec:
        from modelyard.batch.checks import check_output, check_request
        from modelyard.batch.inputs import list_inputs

        if request.address is not None and request.executor is not BatchExecutor.RAY:
            raise InvalidInput("a cluster address is only used by the ray executor")
        version = self._registry.get_version(ModelRef.parse(request.model))
        spec = ModelSpec.from_version(version)
        check_request(request, spec.signature)
        inputs = list_inputs(request.input)
        if request.compression_type is Compression.GZIP:
            for file in inputs:
                if not file.gzipped:
                    raise InvalidInput(
                        f"{file.url}: compression_type is Gzip, but its name does not end in "
                        ".gz, which is how an input is read as gzip: name it ….gz"
                    )
        check_output(request, inputs)
        return spec

    def submit(
        self, request: TransformRequest, name: str | None = None, *, base_name: str | None = None
    ) -> Job:
        """Validate ``request`` (see :meth:`check`), record a Pending batch job for the version
        it resolves to (named ``name``; else ``base_name`` and the time to the millisecond, as
        the SageMaker SDK names a job from its ``base_transform_job_name``; else a new name
        from the model's) and start its worker. Local paths are made absolute (the worker does
        not share the caller's working directory).

        The job claims its output location for its life (in the metadata database, released
        when it ends, a dead worker's job included, which is noticed here if nobody noticed it
        before): two jobs writing one output at once would replace each other's files, and
        the check for existing outputs cannot see a job that has not written yet.

        Raises:
            What :meth:`check` raises; InvalidName: ``name`` (or ``base_name``) is not
            letters, digits, ``.``, ``_`` and ``-`` (128 at most, starting with a letter or
            digit); AlreadyExists: a job of that name exists; Claimed: an active batch job
            writes the same output (however spelled: ``/out``, ``file:///out``), named in the
            message.
        """
        if name is not None:
            validate_name(name, "job name")  # as training and tuning jobs' names
        elif base_name is not None:
            validate_name(base_name, "job name prefix")
        request = _absolute(request)
        spec = self.check(request)
        if name is None:
            name = job_name(spec.name, "batch") if base_name is None else name_from_base(base_name)
        job = Job(
            name=name,
            kind=JobKind.BATCH,
            model_name=spec.name,
            status=JobStatus.PENDING,
            spec={**request.to_dict(), "model_ref": spec.ref},
            hyperparameters={},
            created_at=now(),
            model_version=spec.version,
        )
        claim = _output_claim(request.output)
        try:
            with _secrets_hidden(request):
                created = self._jobs.claiming(lambda: self._jobs.store.create_job(job, claim=claim))
        except Claimed as exc:
            raise Claimed(
                f"the output {_shown(request, request.output)} is being written by batch job "
                f"{exc.holder}, which is still active; wait for it to end or stop it, or write "
                "to another output",
                holder=exc.holder,
            ) from None
        return self._jobs.launch(created)

    def get(self, name: str) -> Job:
        """A batch job (a dead worker detected).

        Raises:
            JobNotFound: no job has that name.
            InvalidInput: the job is of another kind (a training or tuning job).
        """
        job = self._jobs.get(name)
        self.request_of(job)
        return job

    @staticmethod
    def request_of(job: Job) -> TransformRequest:
        """The request a batch job runs, pinned to the version it resolved at submission."""
        if job.kind is not JobKind.BATCH:
            raise InvalidInput(f"job {job.name!r} is a {job.kind.value} job, not a batch job")
        request = TransformRequest.from_dict(job.spec)
        pinned = job.spec.get("model_ref") or request.model
        return TransformRequest.from_dict({**request.to_dict(), "model": pinned})

    def counts(self, job: Job) -> BatchCounts:
        """How far a batch job got (its last reported counts)."""
        return BatchCounts.from_metrics(job.metrics)

    def _check_resumable(self, job: Job) -> None:
        """Refuse, before anything changes, a job that cannot run again: its request no longer
        reads, or the version it is pinned to was deleted since (its worker would only fail).

        Raises:
            InvalidInput; NotFound (ModelNotFound, VersionNotFound): naming the job.
        """
        request = self.request_of(job)
        try:
            self._registry.get_version(ModelRef.parse(request.model))
        except NotFound as exc:
            raise type(exc)(f"job {job.name!r} cannot resume: {exc.message}") from None

    # -- running (inside the worker process) -------------------------------------------------

    def run(self, name: str, stop: threading.Event) -> Job:
        """Execute batch job ``name`` in this process. Never raises for a failure of the job
        itself: it ends Failed (the reason names the file and line of a bad record) or
        Stopped, with the counts reached so far."""
        from modelyard.batch.coordinator import transform
        from modelyard.batch.model import ModelSource

        job = self._jobs.store.transition(
            name,
            (JobStatus.PENDING,),
            JobStatus.IN_PROGRESS,
            pid=os.getpid(),
            host=self._jobs.host,
            started_at=now(),
        )
        log_path = self._jobs.log_path(name)
        reporter = _Reporter(self._jobs, name, self.counts(job))
        try:
            request = self.request_of(job)
            version = self._registry.get_version(ModelRef.parse(request.model))
            with JobLog(log_path, self._jobs.log_limits) as log, _secrets_hidden(request):
                reporter.log = log
                log.write(
                    _shown(
                        request,
                        f"batch transform of {request.input} with {version.name}:"
                        f"{version.version} into {request.output}, {_at_once(request)}\n",
                    )
                )
                source = ModelSource(
                    artifacts=self._artifacts,
                    spec=ModelSpec.from_version(version),
                    scratch=str(self._scratch),
                )
                counts = transform(
                    request,
                    source,
                    job=name,
                    executor=_executor(request),
                    progress=reporter,
                    stop=stop,
                )
                reporter(counts, force=True)
                if note := counts.rounding_note():
                    log.write(_shown(request, f"note: {note}\n"))
                log.write(f"done: {_summary(counts, reporter.elapsed_s)}\n")
        except Exception as exc:  # the job failed; the worker itself must not crash
            reporter.log = None  # closed with the block above
            reporter.flush()
            return self._jobs.end_failed(job, exc, stop)
        return self._jobs.end_job(
            name,
            (JobStatus.IN_PROGRESS, JobStatus.STOPPING),
            JobStatus.COMPLETED,
            log_path,
            pid_is=os.getpid(),
            metrics=counts.to_metrics(),
        )


def _shown(request: TransformRequest, text: str) -> str:
    """``text`` with every credential of the request's input and output URLs masked (a
    presigned URL's signature, a password): job logs, errors and failure reasons quote them."""
    for url in (request.input, request.output):
        text = redact(text, url)
    return text


@contextlib.contextmanager
def _secrets_hidden(request: TransformRequest) -> Iterator[None]:
    """Mask the request's URL credentials in the message of any error raised inside."""
    try:
        yield
    except ModelyardError as exc:
        exc.message = _shown(request, exc.message)
        exc.args = (exc.message,)
        raise


class _Reporter:
    """The engine's progress callback: the job's counts in the store at most once a second
    (and a line in its log), so ``jobs show`` and the CLI's progress bar can follow it."""

    def __init__(self, jobs: JobService, name: str, start: BatchCounts) -> None:
        self._jobs = jobs
        self._name = name
        self._last = start
        self._written = 0.0
        self._began = time.monotonic()
        self.log: JobLog | None = None

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._began

    def __call__(self, counts: BatchCounts, force: bool = False) -> None:
        self._last = counts
        if force or time.monotonic() - self._written >= _REPORT_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self._written = time.monotonic()
        metrics = self._last.to_metrics()
        try:
            for state in (JobStatus.IN_PROGRESS, JobStatus.STOPPING):  # keep a stop request
                with contextlib.suppress(Conflict):  # another state, or another worker's run
                    self._jobs.store.transition(
                        self._name, (state,), state, pid_is=os.getpid(), metrics=metrics
                    )
                    break
            self._jobs.store.heartbeat([self._name], now())
        except ModelyardError:  # the store is unreachable: a missed report does not fail a job
            return
        if self.log is not None:
            self.log.write(f"progress: {_summary(self._last, self.elapsed_s)}\n")


def _summary(counts: BatchCounts, elapsed_s: float) -> str:
    rate = counts.rows_in / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"{counts.files_done}/{counts.files_total} files, {counts.rows_in} rows in, "
        f"{counts.rows_out} out, {counts.rows_failed} failed, {rate:,.0f} rows/s"
    )


def _worker_args(job: Job) -> list[str]:
    """A local job's worker starts its other worker processes before it reads the store
    (:mod:`modelyard.batch.spawn`); it is one of the workers itself."""
    request = TransformRequest.from_dict(job.spec)
    if request.executor is BatchExecutor.RAY:
        return []
    from modelyard.batch.spawn import default_workers

    cores = default_workers()  # beyond one per core, the pool starts the rest as it goes
    helpers = min(request.concurrency(cores) or cores, cores) - 1
    return ["--prestart", f"modelyard.batch.spawn:{helpers}"] if helpers > 0 else []


def _at_once(request: TransformRequest) -> str:
    """How many work units the job runs at once, as its log says it."""
    from modelyard.batch.spawn import default_workers

    ray = request.executor is BatchExecutor.RAY
    count = request.concurrency(None if ray else default_workers())
    if count is not None:
        return f"up to {count} worker{'s' if count != 1 else ''}"
    if ray:
        return "a worker per CPU of the Ray cluster"
    return f"up to {default_workers()} workers (one per core)"


def _executor(request: TransformRequest) -> Executor:
    """Ray when the request asks for it; else local worker processes, this job worker being
    one of them (it has nothing else to do while the units run)."""
    if request.executor is BatchExecutor.RAY:
        from modelyard.batch.ray_executor import RayExecutor

        return RayExecutor(request.concurrency(), request.address)
    from modelyard.batch.executor import LocalExecutor
    from modelyard.batch.spawn import default_workers

    return LocalExecutor(request.concurrency(default_workers()), run_here=True)


def _output_claim(output: str) -> str:
    """The key a job claims its output by: one for each place, however it is spelled."""
    from modelyard.batch.location import canonical

    return hashlib.sha256(canonical(output).encode()).hexdigest()


def _absolute(request: TransformRequest) -> TransformRequest:
    data = request.to_dict()
    for key in ("input", "output"):
        value = data[key]
        if "://" not in value:
            data[key] = os.path.abspath(value)
    return TransformRequest.from_dict(data)
