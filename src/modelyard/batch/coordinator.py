"""The batch transform: the one entry point a job runs (``transform``), and its bookkeeping.

It checks everything it can before any work (the request, the inputs, the output location,
each file's first record), plans the work units, skips those its manifest says are done (a
resumed job), has an executor run the rest, and assembles each input's output once all its
units are in. It keeps the bad-record budget over the whole job: the first bad record past
``max_errors`` fails the job, naming the file and line (and the count when the budget was
not 0). Completed units stay recorded whatever happens, so calling ``transform`` again with
the same request and job name finishes the job with the same bytes an uninterrupted run
writes. The manifest is removed when the job completes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.batch.assemble import assemble
from modelyard.batch.checks import check_output, check_request
from modelyard.batch.executor import Executor, LocalExecutor
from modelyard.batch.inputs import list_inputs
from modelyard.batch.lines import count_lines
from modelyard.batch.location import Location
from modelyard.batch.manifest import Manifest
from modelyard.batch.plan import UNIT_BYTES, FilePlan, JobSpec, WorkUnit, request_digest
from modelyard.batch.planner import plan_files
from modelyard.batch.sink import UnitResult
from modelyard.batch.spawn import default_workers
from modelyard.domain.batch import BatchCounts, BatchFormat, SplitType, TransformRequest
from modelyard.errors import InvalidPayload, JobFailed

if TYPE_CHECKING:
    from modelyard.batch.model import ModelSource

__all__ = ["JobOutcome", "run_job", "transform"]

_PROGRESS_S = 0.5


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What a finished job did: its counts, and how many records took the fast path."""

    counts: BatchCounts
    fast_rows: int


def _quiet(counts: BatchCounts) -> None:
    return None


def transform(
    request: TransformRequest,
    model: ModelSource,
    *,
    job: str,
    executor: Executor | None = None,
    progress: Callable[[BatchCounts], None] = _quiet,
    stop: threading.Event | None = None,
    fast_path: bool = True,
    unit_bytes: int = UNIT_BYTES,
) -> BatchCounts:
    """Run (or resume) the batch transform ``request`` with ``model``, as job ``job``.

    Args:
        request: What to transform, and how.
        model: The resolved model version, and where to load it from.
        job: The job's name: it names the manifest folder, so calling again with the same
            request and name resumes the job.
        executor: Where units run (default: local workers, ``request.concurrency`` of them).
        progress: Called with the counts so far, at most twice a second, and at the end.
        stop: Set it to stop soon; the finished units stay recorded for a resumption.
        fast_path: Use the columnar CSV path where it applies (it writes the same bytes).
        unit_bytes: The work-unit size (part of the manifest keys: resume with the same).

    Returns:
        Rows read, written and failed, and files done, over the whole job (a resumed job
        counts what its earlier runs did too).

    Raises:
        InvalidInput: a bad request or input (nothing written); InvalidPayload: bad records
            past ``max_errors`` (names the file and line).
        OutputExists, StorageNotWritable: the output location (checked before any work).
        JobFailed: stopped, or a worker process died.
        ArtifactMissing, ArtifactCorrupted, UnsafeModelFormat: the model cannot be loaded.
    """
    return run_job(
        request,
        model,
        job=job,
        executor=executor,
        progress=progress,
        stop=stop,
        fast_path=fast_path,
        unit_bytes=unit_bytes,
    ).counts


def run_job(
    request: TransformRequest,
    model: ModelSource,
    *,
    job: str,
    executor: Executor | None = None,
    progress: Callable[[BatchCounts], None] = _quiet,
    stop: threading.Event | None = None,
    fast_path: bool = True,
    unit_bytes: int = UNIT_BYTES,
) -> JobOutcome:
    """:func:`transform`, also saying how many records took the fast path."""
    stop = stop or threading.Event()
    signature = model.spec.signature
    check_request(request, signature)
    inputs = list_inputs(request.input)
    output = Location(request.output)
    manifest = Manifest(output, job)
    check_output(request, inputs, job=job)
    digest = request_digest(request, model.spec.artifact_digest, unit_bytes)
    plans, units = plan_files(request, inputs, signature, digest, unit_bytes)
    spec = JobSpec(model, request, tuple(plans), output, manifest.state, fast_path, unit_bytes)
    books = _Books(manifest, spec, units, progress)
    todo = books.resume()
    if executor is None:
        executor = LocalExecutor(request.concurrency(default_workers()))
    executor.run(spec, todo, books.done, stop)
    if books.files_done < len(plans):
        raise JobFailed(
            f"batch job {job} stopped with {books.files_done} of {len(plans)} files done; "
            "its finished work is kept for a resumption"
        )
    manifest.remove()
    books.report(force=True)
    return JobOutcome(books.counts(final=True), books.fast_rows)


class _Books:
    """The coordinator's accounts: finished units, files assembled, the budget, progress."""

    def __init__(
        self,
        manifest: Manifest,
        spec: JobSpec,
        units: list[list[WorkUnit]],
        progress: Callable[[BatchCounts], None],
    ) -> None:
        self.manifest = manifest
        self.spec = spec
        self.units = units
        self.progress = progress
        self.results: dict[str, UnitResult] = {}
        self.finished: set[int] = set()
        self.rows_in = self.rows_out = self.rows_failed = self.fast_rows = self.rounded = 0
        self._first_rounded: UnitResult | None = None
        self._reported = 0.0

    @property
    def files_done(self) -> int:
        return len(self.finished)

    def resume(self) -> list[WorkUnit]:
        """Take in what earlier runs finished; the units left to run, in input order."""
        self.manifest.drop_stale()
        todo: list[WorkUnit] = []
        for plan, units in zip(self.spec.files, self.units, strict=True):
            done = self.manifest.finished_units(units)
            for result in done.values():
                self._count(result)
            if self.manifest.finished_file(plan) and len(done) == len(units):
                self.finished.add(plan.index)
            else:
                todo.extend(u for u in units if u.key not in done)
        self._check_budget(None)
        for plan, units in zip(self.spec.files, self.units, strict=True):
            if plan.index not in self.finished and all(u.key in self.results for u in units):
                self._assemble(plan)  # killed between its last unit and its output
        self.report(force=True)
        return todo

    def done(self, result: UnitResult) -> None:
        """Record a finished unit; assemble its file when it was the last one."""
        if result.exceeded:  # its bad records alone pass the budget; nothing of it was kept
            self.rows_failed += result.rows_failed
            self._check_budget(result)
            return
        self._count(result)
        self._check_budget(result)
        if all(u.key in self.results for u in self.units[result.file]):
            self._assemble(self.spec.files[result.file])
        self.report()

    def counts(self, final: bool = False) -> BatchCounts:
        """The counts so far; ``final`` also names the first value that lost precision."""
        first = self._first_rounded
        return BatchCounts(
            self.rows_in,
            self.rows_out,
            self.rows_failed,
            self.files_done,
            len(self.spec.files),
            self.rounded,
            self._where(first, first.first_rounded or 0) if final and first else "",
        )

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._reported >= _PROGRESS_S:
            self._reported = now
            self.progress(self.counts())

    def _count(self, result: UnitResult) -> None:
        self.results[result.key] = result
        self.rows_in += result.rows_in
        self.rows_out += result.rows_out
        self.rows_failed += result.rows_failed
        self.fast_rows += result.fast_rows
        if result.rounded:
            self.rounded += result.rounded
            first = self._first_rounded
            if first is None or (result.file, result.index) < (first.file, first.index):
                self._first_rounded = result

    def _assemble(self, plan: FilePlan) -> None:
        assemble(self.manifest, plan, self.units[plan.index], self.results)
        self.finished.add(plan.index)

    def _check_budget(self, result: UnitResult | None) -> None:
        budget = self.spec.request.max_errors
        if self.rows_failed <= budget:
            return
        culprit = (
            result
            if result is not None and result.first_error
            else next(r for r in self.results.values() if r.first_error)
        )
        where = self._where(culprit, culprit.first_error[0] if culprit.first_error else 0)
        if budget == 0:
            raise InvalidPayload(f"{where}: {culprit.first_error[1]}")  # type: ignore[index]
        raise InvalidPayload(
            f"at least {self.rows_failed} bad records, more than max_errors={budget} allows; "
            f"the first of the last: {where}: {culprit.first_error[1]}"  # type: ignore[index]
        )

    def _where(self, result: UnitResult, at: int) -> str:
        """Where record ``at`` of ``result``'s unit is: its file and line (or record)."""
        plan = self.spec.files[result.file]
        if plan.format is BatchFormat.PARQUET or self.spec.request.split_type is SplitType.NONE:
            return f"{plan.file.url}, record {at}"
        offset = result.first_offset
        before = count_lines(plan.file.url, plan.file.gzipped, offset) if offset else 0
        return f"{plan.file.url}, line {before + at + 1}"
