"""Executors: where a batch job's work units run.

The interface is one method. An executor runs every unit with a
:class:`~modelyard.batch.runner.UnitRunner` (one per worker, built from the pickled
:class:`~modelyard.batch.plan.JobSpec`: it loads the model once), in any order and on any
machine, and hands each result to ``done`` in the calling thread as it arrives. The
coordinator (:func:`modelyard.batch.coordinator.transform`) keeps the books: the order of the
outputs, the bad-record budget, the progress. A Ray executor is the same loop over Ray Data's
``map_batches`` with an actor class that holds a ``UnitRunner``; the runners write the same
parts, so the outputs are the same bytes.

:class:`LocalExecutor` runs units in this process (one worker) or in worker processes started
fresh with ``python -m modelyard.batch.worker`` (several; :mod:`.spawn`, which may have
started some before the job was read): never forked from a process whose
XGBoost or OpenMP thread pools may be running, and without re-importing the caller's main
module (as multiprocessing's spawn would). Each worker holds two units at a time, so it never
waits for the coordinator; a worker that dies fails the job, naming the unit it held.
"""

from __future__ import annotations

import contextlib
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from modelyard.batch import spawn
from modelyard.batch.plan import JobSpec, WorkUnit
from modelyard.batch.sink import UnitResult
from modelyard.batch.spawn import default_workers
from modelyard.errors import JobFailed

__all__ = ["Executor", "LocalExecutor", "default_workers"]

_POLL_S = 0.2
_PER_WORKER = 2
_GRACE_S = 5.0


class Executor(Protocol):
    """Runs the work units of a batch job."""

    def run(
        self,
        job: JobSpec,
        units: Sequence[WorkUnit],
        done: Callable[[UnitResult], None],
        stop: threading.Event,
    ) -> None:
        """Run every unit with ``UnitRunner(job)`` and call ``done(result)`` for each, in
        this thread, as results arrive (in any order).

        Returns when every unit is done, or soon after ``stop`` is set (within a second or
        so; units in flight are abandoned: the ones already done are recorded by their
        runners). Whatever ``done`` raises ends the run (workers stopped) and propagates.

        Raises:
            ModelyardError: a worker could not load the model, a unit failed as a whole
                (storage), or a worker died.
        """
        ...


class LocalExecutor:
    """Runs units on this machine: in this process with one worker, else in worker processes.

    Args:
        workers: How many at most (None: one per core); never more than there are units.
        run_here: This process is one of the workers (a thread of it runs units, lean: see
            :meth:`BatchModel.load`), and starts one process fewer. Only in a process that
            exists for this job. None: when this process is a job's own worker process
            (``python -m modelyard.worker``), which otherwise would only wait.
    """

    def __init__(self, workers: int | None = None, run_here: bool | None = None) -> None:
        self.workers = workers or default_workers()
        self.run_here = _job_process() if run_here is None else run_here

    def run(
        self,
        job: JobSpec,
        units: Sequence[WorkUnit],
        done: Callable[[UnitResult], None],
        stop: threading.Event,
    ) -> None:
        count = min(self.workers, len(units))
        try:
            if count == 1:
                _in_process(job, units, done, stop, lean=self.run_here)
            elif count > 1:
                _Pool(job, count, here=self.run_here).run(units, done, stop)
        finally:
            spawn.discard_warm()


def _job_process() -> bool:
    """Whether this process is a job's worker process (it runs that one job, then exits)."""
    main = sys.modules.get("__main__")
    return getattr(getattr(main, "__spec__", None), "name", None) == "modelyard.worker"


def _in_process(
    job: JobSpec,
    units: Sequence[WorkUnit],
    done: Callable[[UnitResult], None],
    stop: threading.Event,
    lean: bool = False,
) -> None:
    from modelyard.batch.runner import UnitRunner

    runner = UnitRunner(job, lean=lean)
    try:
        for unit in units:
            if stop.is_set():
                return
            done(runner(unit))
    finally:
        runner.close()


@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen[bytes] | None  # None: the thread worker of this process
    send: Connection
    receive: Connection
    held: deque[WorkUnit] = field(default_factory=deque)
    ready: bool = False
    thread: threading.Thread | None = None


class _Pool:
    """Worker processes (and with ``here``, a thread of this process) fed over pipes with
    pickled units and results."""

    def __init__(self, job: JobSpec, count: int, here: bool = False) -> None:
        self._job = job
        self._count = count
        self._here = here
        self._workers: list[_Worker] = []

    def run(
        self, units: Sequence[WorkUnit], done: Callable[[UnitResult], None], stop: threading.Event
    ) -> None:
        queue = deque(units)
        try:
            for _ in range(self._count - 1 if self._here else self._count):
                spawned = spawn.take()
                self._workers.append(_Worker(spawned.process, spawned.send, spawned.receive))
            for worker in self._workers:  # all started first: each imports while this sends
                self._send_job(worker)
            if self._here:  # after the processes: they start while this one loads the model
                self._workers.append(self._start_here())
            by_conn = {w.receive: w for w in self._workers}
            while queue or any(w.held for w in self._workers) or not self._all_ready():
                if stop.is_set():
                    return
                for conn in wait(list(by_conn), timeout=_POLL_S):
                    worker = by_conn[conn]  # type: ignore[index]
                    kind, payload = self._receive(worker)
                    if kind == "error":
                        raise payload
                    if kind == "done":
                        worker.held.popleft()
                        done(payload)
                    else:
                        worker.ready = True
                    while queue and len(worker.held) < _PER_WORKER:
                        worker.held.append(queue.popleft())
                        worker.send.send(worker.held[-1])
            for worker in self._workers:
                worker.send.send(None)
        finally:
            self._close()

    def _all_ready(self) -> bool:
        return all(w.ready for w in self._workers)

    def _send_job(self, worker: _Worker) -> None:
        assert worker.process is not None
        try:
            worker.send.send_bytes(pickle.dumps(self._job))
        except OSError:  # it died before it read its job (a prestarted one may have waited)
            code = worker.process.wait()
            raise JobFailed(
                f"a batch worker process died (exit code {code}) before it took the job"
            ) from None

    def _start_here(self) -> _Worker:
        from modelyard.batch.worker import serve

        inbox, send = Pipe(duplex=False)
        receive, outbox = Pipe(duplex=False)
        thread = threading.Thread(
            target=serve, args=(self._job, inbox, outbox), name="batch-worker", daemon=True
        )
        thread.start()
        return _Worker(None, send, receive, thread=thread)

    def _receive(self, worker: _Worker) -> tuple[str, Any]:
        try:
            message: tuple[str, Any] = worker.receive.recv()
        except (EOFError, OSError):
            if worker.process is None:
                raise JobFailed("the batch worker thread ended unexpectedly") from None
            code = worker.process.wait()
            held = f" while running {_describe(self._job, worker.held[0])}" if worker.held else ""
            raise JobFailed(f"a batch worker process died (exit code {code}){held}") from None
        return message

    def _close(self) -> None:
        for worker in self._workers:
            if worker.process is None:
                with contextlib.suppress(OSError):
                    worker.send.send(None)  # it stops after its unit
        for worker in self._workers:
            for conn in (worker.send, worker.receive):
                conn.close()
        for worker in self._workers:
            if worker.thread is not None:
                worker.thread.join(_GRACE_S)
                continue
            assert worker.process is not None
            try:
                worker.process.wait(timeout=_GRACE_S if not worker.held else 0.01)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        self._workers.clear()


def _describe(job: JobSpec, unit: WorkUnit) -> str:
    plan = job.files[unit.file]
    return f"{plan.file.url} (bytes or rows {unit.start}-{unit.end})"
