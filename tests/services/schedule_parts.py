"""Real parts for the schedule service tests: a migrated store (SQLite or PostgreSQL), the
schedule and lease stores on it, and a batch port that records each submitted job in the real
job store (as ``BatchService.submit`` does, without starting a worker process) and checks a
request the way the batch service's check does for what these tests vary: the model exists
and the input file is there."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelyard.domain.batch import TransformRequest
from modelyard.domain.jobs import Job, JobKind, JobStatus
from modelyard.errors import InvalidInput, ModelNotFound
from modelyard.services.schedules import ScheduleService
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.job_store import SqlJobStore
from modelyard.storage.sql.lease_store import SqlLeaseStore
from modelyard.storage.sql.schedule_store import SqlScheduleStore
from modelyard.storage.sql.store import SqlMetadataStore

#: A Monday 05:00 UTC (06:00 in Paris).
T0 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
MODELS = ("churn",)


class Clock:
    """Now, as the test sets it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class BatchPort:
    """``submit`` and ``check`` over a real job store. ``fail`` makes a submission raise."""

    jobs: SqlJobStore
    holder: str
    clock: Callable[[], datetime]
    fail: Exception | None = None
    checked: list[TransformRequest] = field(default_factory=list)
    _count: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, request: TransformRequest) -> None:
        self.checked.append(request)
        name = request.model.split("@")[0].split(":")[0]
        if name not in MODELS:
            raise ModelNotFound(f"model {name!r} does not exist")
        if not Path(request.input).exists():
            raise InvalidInput(f"input {request.input!r} does not exist")

    def submit(self, request: TransformRequest) -> Job:
        if self.fail is not None:
            raise self.fail
        self.check(request)
        with self._lock:
            number = next(self._count)
        name = f"batch-{self.holder}-{number}"
        return self.jobs.create_job(
            Job(
                name=name,
                kind=JobKind.BATCH,
                model_name=request.model,
                status=JobStatus.PENDING,
                spec=request.to_dict(),
                hyperparameters={},
                created_at=self.clock(),
            )
        )


@dataclass
class Parts:
    """One store's schedule, lease and job stores, and services built on them."""

    engine: Any
    clock: Clock

    def __post_init__(self) -> None:
        SqlMetadataStore(self.engine)  # creates the schema
        self.store = SqlScheduleStore(self.engine)
        self.leases = SqlLeaseStore(self.engine)
        self.jobs = SqlJobStore(self.engine)

    def service(self, holder: str = "one", **options: Any) -> tuple[ScheduleService, BatchPort]:
        """A service (and its batch port) on these stores; ``options`` go to the service."""
        clock = options.pop("clock", self.clock)
        port = BatchPort(self.jobs, holder, clock)
        service = ScheduleService(
            self.store,
            self.leases,
            submit=port.submit,
            check=port.check,
            clock=clock,
            get_job=self.jobs.get_job,
            holder=holder,
            **options,
        )
        return service, port

    def batch_jobs(self) -> list[Job]:
        return self.jobs.list_jobs(kind=JobKind.BATCH, limit=10_000)

    def close(self) -> None:
        self.engine.dispose()


def open_parts(url: str, clock: Clock | None = None) -> Parts:
    """The stores at ``url``, schema created."""
    return Parts(make_engine(url), clock or Clock())
