"""The Ray executor: a batch job's work units on a Ray cluster, through Ray Data.

The units become a dataset of one row each (the pickled :class:`~modelyard.batch.plan.WorkUnit`),
mapped with ``map_batches`` by a pool of ``workers`` actors (``ActorPoolStrategy``). Each actor
holds a :class:`~modelyard.batch.runner.UnitRunner`: it loads the model once and runs one unit
a call, writing the unit's parts and done marker exactly as a local worker process does, so
the job's outputs are the same bytes (and a job stopped on Ray resumes on any executor). Each
call answers the pickled :class:`~modelyard.batch.sink.UnitResult` (or the error the unit
raised), which the driver hands to ``done`` as the rows stream back. Scheduling, placement and
restarting a lost actor are Ray Data's (by default it restarts a lost actor and runs its unit
again, without limit; ``modelyard jobs stop`` ends such a job). Nothing here schedules.

A stop is seen within ``_POLL_S`` (a reader thread waits on Ray). On a Ray this executor
started, the job's end shuts Ray down; on the caller's Ray, units already running when the job
stops or fails finish in the background (their parts are kept for a resumption), and the actors
are let go at the next result.

Without an address, the executor uses the Ray already started in this process
(``ray.init()`` by the caller), or starts a local one and shuts it down when the job ends.
With an address (``ray://head:10001`` for Ray Client, ``auto`` or ``host:6379`` from a node of
the cluster) it connects to that cluster. On a cluster, every node must reach the job's
input, output and artifact locations (an object store or a shared file system), be able to
create the job's scratch folder, and have modelyard installed.

Ray is imported only when a job runs on this executor (``pip install 'modelyard[ray]'``).
"""

from __future__ import annotations

import logging
import pickle
import queue
import shutil
import threading
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelyard.batch.plan import JobSpec, WorkUnit
from modelyard.batch.sink import UnitResult
from modelyard.errors import JobFailed, MissingDependency, ModelyardError

__all__ = ["RayExecutor"]

_INSTALL = "pip install 'modelyard[ray]'"
_POLL_S = 0.2
_JOIN_S = 30.0


class RayExecutor:
    """Runs units on Ray (see the module docstring).

    Args:
        workers: Actors, each holding the model once (None: one per CPU of the cluster);
            never more than there are units.
        address: The cluster (None: the Ray of this process, else a local one).
        cpus_per_worker: CPUs Ray reserves for each actor.
        init_options: More ``ray.init`` arguments (a local start gets
            ``include_dashboard=False`` and warning-level logs unless given here).
    """

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        *,
        cpus_per_worker: float = 1.0,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.address = address
        self.cpus_per_worker = cpus_per_worker
        self.init_options = dict(init_options or {})

    def run(
        self,
        job: JobSpec,
        units: Sequence[WorkUnit],
        done: Callable[[UnitResult], None],
        stop: threading.Event,
    ) -> None:
        """See :class:`~modelyard.batch.executor.Executor`.

        Raises:
            MissingDependency: Ray is not installed.
            JobFailed: Ray could not start or connect, or failed under the job (the cluster
                went away).
            ModelyardError: a unit or the model failed (the error the runner raised).
        """
        if not units:
            return
        ray = _import_ray()
        started = self._connect(ray)
        # The actors of this run materialise the model below a folder of their own, removed
        # when the run ends even if Ray killed them before they could clean up.
        scratch = Path(job.model.scratch) / f"ray-{uuid.uuid4().hex[:12]}"
        job = replace(job, model=replace(job.model, scratch=str(scratch)))
        try:
            self._drain(ray, job, units, done, stop)
        finally:
            if started:
                ray.shutdown()

    def _drain(
        self,
        ray: Any,
        job: JobSpec,
        units: Sequence[WorkUnit],
        done: Callable[[UnitResult], None],
        stop: threading.Event,
    ) -> None:
        """Hand results to ``done`` here while a reader thread waits on Ray for them, so a
        stop is seen within ``_POLL_S`` even while no unit finishes (actors starting)."""
        inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        leaving = threading.Event()

        def read() -> None:
            results = self._results(ray, job, units)
            try:
                for result in results:
                    inbox.put(("done", result))
                    if leaving.is_set():
                        return
                inbox.put(("end", None))
            except BaseException as exc:  # handed to the caller's thread
                inbox.put(("error", exc))
            finally:
                results.close()  # Ray Data lets its actors go
                shutil.rmtree(job.model.scratch, ignore_errors=True)

        reader = threading.Thread(target=read, name="ray-executor-results", daemon=True)
        reader.start()
        try:
            while not stop.is_set():
                try:
                    kind, payload = inbox.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if kind == "end":
                    reader.join(_JOIN_S)  # its clean-up is quick once Ray Data is done
                    return
                if kind == "error":
                    raise payload
                done(payload)
        finally:
            leaving.set()

    def _connect(self, ray: Any) -> bool:
        """Connect to the cluster (or start a local Ray); True if this call started one."""
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        options.update(self.init_options)
        try:
            ray.init(address=self.address, **options)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
            where = self.address or "a local Ray"
            raise JobFailed(f"cannot start or reach {where}: {type(exc).__name__}: {exc}") from None
        return True

    def _results(
        self, ray: Any, job: JobSpec, units: Sequence[WorkUnit]
    ) -> Generator[UnitResult, None, None]:
        """The units' results as Ray Data streams them back (any order)."""
        from ray.data import ActorPoolStrategy, DataContext

        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        count = min(workers, len(units))
        rows = [{"unit": pickle.dumps(unit)} for unit in units]
        context = DataContext.get_current()
        shown = context.enable_progress_bars
        context.enable_progress_bars = False  # a job's log is no terminal
        try:
            dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                _UnitActor,
                fn_constructor_kwargs={"job": pickle.dumps(job)},
                compute=ActorPoolStrategy(size=count),
                batch_size=1,
                batch_format="numpy",
                num_cpus=self.cpus_per_worker,
            )
            yield from _unpickled(dataset.iter_rows())
        finally:
            context.enable_progress_bars = shown


def _unpickled(rows: Iterator[dict[str, Any]]) -> Generator[UnitResult, None, None]:
    """Each row's result, or its error raised; a Ray failure as JobFailed."""
    try:
        for row in rows:
            kind, payload = pickle.loads(row["result"])
            if kind == "error":
                raise payload
            yield payload
    except ModelyardError:
        raise
    except Exception as exc:  # Ray's own errors: an actor died, the cluster went away...
        raise JobFailed(f"the Ray executor failed: {type(exc).__name__}: {exc}") from None
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


class _UnitActor:
    """A Ray Data actor: one :class:`UnitRunner` for its life, one unit a call.

    A model that cannot load, or a unit that fails, is answered as an error row (the
    driver raises it) rather than raised here, so Ray neither retries nor wraps our errors.
    """

    def __init__(self, job: bytes) -> None:
        from modelyard.batch.runner import UnitRunner

        self._runner: UnitRunner | None = None
        self._error: Exception | None = None
        try:
            self._runner = UnitRunner(pickle.loads(job), lean=True)
        except Exception as exc:
            self._error = _picklable(exc)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        answers = []
        for raw in batch["unit"]:
            if self._runner is None:
                answers.append(pickle.dumps(("error", self._error)))
                continue
            try:
                answers.append(pickle.dumps(("done", self._runner(pickle.loads(raw)))))
            except Exception as exc:
                answers.append(pickle.dumps(("error", _picklable(exc))))
        return {"result": answers}

    def __del__(self) -> None:
        if self._runner is not None:
            self._runner.close()


def _picklable(exc: Exception) -> Exception:
    """``exc`` if it is one of ours and pickles, else a JobFailed naming it."""
    if isinstance(exc, ModelyardError):
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            pass
        else:
            return exc
    return JobFailed(f"a Ray batch worker failed: {type(exc).__name__}: {exc}")


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # the Data library is the ``ray[data]`` extra
    except ImportError as exc:
        raise MissingDependency(
            f"the Ray executor needs Ray Data ({exc.name or 'ray'} is missing): {_INSTALL}"
        ) from None
    return ray
