"""``SqlJobStore``: jobs on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from modelyard.domain import Job, JobKind, JobStatus
from modelyard.errors import AlreadyExists, Claimed, Conflict, InvalidInput, JobNotFound
from modelyard.storage.base import JobStore
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import CLAIM_HOLDING, jobs
from modelyard.storage.sql.timestamps import aware, store_clock

_SETTABLE = {
    "hyperparameters",
    "artifact",
    "metrics",
    "failure_reason",
    "model_version",
    "log_digest",
    "pid",
    "host",
    "started_at",
    "ended_at",
    "heartbeat_at",
}


def _job(row: Row[Any]) -> Job:
    return Job(
        name=row.name,
        kind=JobKind(row.kind),
        model_name=row.model_name,
        status=JobStatus(row.status),
        spec=dict(row.spec),
        hyperparameters=dict(row.hyperparameters),
        created_at=aware(row.created_at),
        metrics=dict(row.metrics),
        failure_reason=row.failure_reason,
        model_version=row.model_version,
        log_digest=row.log_digest,
        pid=row.pid,
        host=row.host,
        started_at=aware(row.started_at) if row.started_at else None,
        ended_at=aware(row.ended_at) if row.ended_at else None,
        parent=row.parent,
        artifact=dict(row.artifact) if row.artifact is not None else None,
        heartbeat_at=aware(row.heartbeat_at) if row.heartbeat_at else None,
    )


class SqlJobStore(JobStore):
    """A :class:`JobStore` on an engine whose schema is already migrated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_job(self, job: Job, *, claim: str | None = None) -> Job:
        try:
            with transaction(self._engine, write=True) as conn:
                if conn.execute(sa.select(jobs.c.id).where(jobs.c.name == job.name)).first():
                    raise AlreadyExists(f"job {job.name!r} already exists")
                self._check_claim(conn, claim)
                conn.execute(
                    jobs.insert().values(
                        name=job.name,
                        kind=job.kind.value,
                        model_name=job.model_name,
                        status=JobStatus.PENDING.value,
                        spec=job.spec,
                        hyperparameters=job.hyperparameters,
                        metrics=job.metrics,
                        model_version=job.model_version,
                        created_at=job.created_at,
                        parent=job.parent,
                        pid=job.pid,
                        host=job.host,
                        claim=claim,
                    )
                )
                return _job(conn.execute(sa.select(jobs).where(jobs.c.name == job.name)).one())
        except AlreadyExists:
            # PostgreSQL: a concurrent submission took the claim between the check and the
            # insert; the index refused this one. Say who holds it, as the check would have.
            self._raise_if_claimed(claim)
            raise

    def _check_claim(self, conn: Connection, claim: str | None, but: str | None = None) -> None:
        if claim is None:
            return
        query = sa.select(jobs.c.name).where(
            jobs.c.claim == claim, jobs.c.status.in_(CLAIM_HOLDING)
        )
        if but is not None:
            query = query.where(jobs.c.name != but)
        holder = conn.execute(query).scalar()
        if holder is not None:
            raise Claimed(f"job {holder!r} holds it", holder=holder)

    def _raise_if_claimed(self, claim: str | None, but: str | None = None) -> None:
        with transaction(self._engine, write=False) as conn:
            self._check_claim(conn, claim, but)

    def get_job(self, name: str) -> Job:
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.name == name)).first()
        if row is None:
            raise JobNotFound(f"job {name!r} does not exist")
        return _job(row)

    def list_jobs(
        self,
        *,
        model_name: str | None = None,
        parent: str | None = None,
        kind: JobKind | None = None,
        limit: int = 100,
    ) -> list[Job]:
        query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        if model_name is not None:
            query = query.where(jobs.c.model_name == model_name)
        if parent is not None:
            query = query.where(jobs.c.parent == parent)
        if kind is not None:
            query = query.where(jobs.c.kind == kind.value)
        with transaction(self._engine, write=False) as conn:
            return [_job(r) for r in conn.execute(query)]

    def heartbeat(self, names: Sequence[str], at: datetime) -> int:
        if not names:
            return 0
        active = [JobStatus.PENDING.value, JobStatus.IN_PROGRESS.value, JobStatus.STOPPING.value]
        with transaction(self._engine, write=True) as conn:
            if conn.dialect.name == "postgresql":
                at = store_clock(conn)
            return conn.execute(
                jobs.update()
                .where(jobs.c.name.in_(list(names)), jobs.c.status.in_(active))
                .values(heartbeat_at=at)
            ).rowcount

    def clock(self) -> datetime:
        with transaction(self._engine, write=False) as conn:
            return store_clock(conn)

    def transition(
        self,
        name: str,
        allowed: tuple[JobStatus, ...],
        to: JobStatus,
        *,
        pid_is: int | None = None,
        beat: bool = False,
        **fields: Any,
    ) -> Job:
        unknown = set(fields) - _SETTABLE
        if unknown:
            raise InvalidInput(f"cannot set job fields {sorted(unknown)}")
        reason = fields.get("failure_reason")
        if isinstance(reason, str) and "\x00" in reason:
            # A failure reason quotes what the job printed or raised, which may hold a NUL that
            # PostgreSQL refuses in text: refusing it would leave the job stuck in progress.
            fields["failure_reason"] = reason.replace("\x00", "\ufffd")
        try:
            with transaction(self._engine, write=True) as conn:
                if to.value in CLAIM_HOLDING and any(s.finished for s in allowed):
                    # A job resumed takes its claim back, if no other active job holds it.
                    held = conn.execute(sa.select(jobs.c.claim).where(jobs.c.name == name))
                    self._check_claim(conn, held.scalar(), but=name)
                if beat:  # on the clock silence is read on (see JobStore.clock)
                    fields["heartbeat_at"] = store_clock(conn)
                update = jobs.update().where(
                    jobs.c.name == name, jobs.c.status.in_([s.value for s in allowed])
                )
                if pid_is is not None:
                    update = update.where(jobs.c.pid == pid_is)
                done = conn.execute(update.values(status=to.value, **fields)).rowcount
                row = conn.execute(sa.select(jobs).where(jobs.c.name == name)).first()
                if row is None:
                    raise JobNotFound(f"job {name!r} does not exist")
                if not done and pid_is is not None and row.pid != pid_is:
                    raise Conflict(
                        f"job {name!r} is run by another worker now (pid {row.pid} on "
                        f"{row.host}), not pid {pid_is}"
                    )
                if not done:
                    raise Conflict(f"job {name!r} is {row.status}; it cannot become {to.value}")
                return _job(row)
        except AlreadyExists:  # the claim was taken between the check and the update
            claim = self._claim_of(name)
            self._raise_if_claimed(claim, but=name)
            raise

    def _claim_of(self, name: str) -> str | None:
        with transaction(self._engine, write=False) as conn:
            found: str | None = conn.execute(
                sa.select(jobs.c.claim).where(jobs.c.name == name)
            ).scalar()
            return found
