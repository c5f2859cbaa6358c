"""``SqlScheduleStore``: schedules and their runs on SQLite or PostgreSQL (the contract:
``storage/schedules.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from modelyard.domain.batch import TransformRequest
from modelyard.domain.schedules import MissedPolicy, Schedule, ScheduleRun, ScheduleRunStatus
from modelyard.errors import AlreadyExists, NotFound
from modelyard.storage.schedules import ScheduleStore
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import schedule_runs, schedules
from modelyard.storage.sql.timestamps import aware

#: The one action schedules take today (the ``action`` column leaves room for more).
_BATCH = "batch"


def _utc(value: datetime) -> datetime:
    # Ticks are compared as text on SQLite: always written in UTC.
    return value.astimezone(UTC)


def _schedule(row: Row[Any]) -> Schedule:
    return Schedule(
        name=row.name,
        cron=row.cron,
        timezone=row.timezone,
        missed=MissedPolicy(row.missed),
        request=TransformRequest.from_dict(dict(row.spec)),
        paused=bool(row.paused),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        active_since=aware(row.active_since),
    )


def _run(row: Row[Any]) -> ScheduleRun:
    return ScheduleRun(
        schedule=row.schedule,
        tick=aware(row.tick),
        status=ScheduleRunStatus(row.status),
        at=aware(row.at),
        holder=row.holder,
        job=row.job,
        error=row.error,
        late=bool(row.late),
        missed=int(row.missed),
    )


def _no_schedule(name: str) -> NotFound:
    return NotFound(f"no schedule named {name!r}")


def _get(conn: Connection, name: str, *, lock: bool = False) -> Row[Any]:
    query = sa.select(schedules).where(schedules.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise _no_schedule(name)
    return row


class SqlScheduleStore(ScheduleStore):
    """A :class:`ScheduleStore` on an engine whose schema is already migrated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, schedule: Schedule) -> Schedule:
        try:
            with transaction(self._engine, write=True) as conn:
                conn.execute(
                    schedules.insert().values(
                        name=schedule.name,
                        action=_BATCH,
                        spec=schedule.request.to_dict(),
                        cron=schedule.cron,
                        timezone=schedule.timezone,
                        missed=schedule.missed.value,
                        paused=schedule.paused,
                        created_at=schedule.created_at,
                        updated_at=schedule.updated_at,
                        active_since=schedule.active_since,
                    )
                )
                return _schedule(_get(conn, schedule.name))
        except AlreadyExists:
            raise AlreadyExists(f"a schedule named {schedule.name!r} already exists") from None

    def get(self, name: str) -> Schedule:
        with transaction(self._engine, write=False) as conn:
            return _schedule(_get(conn, name))

    def list_schedules(self) -> list[Schedule]:
        with transaction(self._engine, write=False) as conn:
            rows = conn.execute(sa.select(schedules).order_by(schedules.c.name))
            return [_schedule(r) for r in rows]

    def set_paused(self, name: str, paused: bool, at: datetime) -> tuple[Schedule, bool]:
        where = schedules.c.name == name
        values: dict[str, Any] = {"paused": paused, "updated_at": at}
        if not paused:
            values["active_since"] = at
        with transaction(self._engine, write=True) as conn:
            changed = conn.execute(
                schedules.update().where(where, schedules.c.paused != paused).values(**values)
            ).rowcount
            return _schedule(_get(conn, name)), bool(changed)

    def delete(self, name: str) -> None:
        with transaction(self._engine, write=True) as conn:
            gone = conn.execute(schedules.delete().where(schedules.c.name == name)).rowcount
            if not gone:
                raise _no_schedule(name)
            conn.execute(schedule_runs.delete().where(schedule_runs.c.schedule == name))

    def add_run(self, run: ScheduleRun) -> ScheduleRun:
        key = sa.and_(
            schedule_runs.c.schedule == run.schedule, schedule_runs.c.tick == _utc(run.tick)
        )
        try:
            with transaction(self._engine, write=True) as conn:
                # Locked (on PostgreSQL) so that a concurrent delete removes this run too, or
                # comes first and this one sees the schedule gone.
                _get(conn, run.schedule, lock=True)
                conn.execute(
                    schedule_runs.insert().values(
                        schedule=run.schedule,
                        tick=_utc(run.tick),
                        status=run.status.value,
                        job=run.job,
                        error=run.error,
                        late=run.late,
                        missed=run.missed,
                        holder=run.holder,
                        at=run.at,
                    )
                )
                return _run(conn.execute(sa.select(schedule_runs).where(key)).one())
        except AlreadyExists:
            raise AlreadyExists(
                f"the run of schedule {run.schedule!r} at {run.tick.isoformat()} is recorded "
                "already"
            ) from None

    def list_runs(self, name: str, limit: int = 50) -> list[ScheduleRun]:
        query = (
            sa.select(schedule_runs)
            .where(schedule_runs.c.schedule == name)
            .order_by(schedule_runs.c.tick.desc())
            .limit(limit)
        )
        with transaction(self._engine, write=False) as conn:
            return [_run(r) for r in conn.execute(query)]

    def prune_runs(self, before: datetime) -> int:
        newer = sa.alias(schedule_runs, "newer")
        has_newer = (
            sa.select(newer.c.id)
            .where(
                newer.c.schedule == schedule_runs.c.schedule, newer.c.tick > schedule_runs.c.tick
            )
            .exists()
        )
        with transaction(self._engine, write=True) as conn:
            return int(
                conn.execute(
                    schedule_runs.delete().where(schedule_runs.c.tick < _utc(before), has_newer)
                ).rowcount
            )
