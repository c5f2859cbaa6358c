"""``SqlMonitorStore``: monitor schedules and runs on SQLite or PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from modelyard.domain.drift import DriftConfig
from modelyard.domain.monitors import MonitorRun, MonitorSchedule, RunStatus
from modelyard.errors import AlreadyExists, InvalidInput, NotFound
from modelyard.storage.monitoring import MonitorStore
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import monitor_runs, monitor_schedules
from modelyard.storage.sql.timestamps import aware

log = logging.getLogger("modelyard.monitors")


def _utc(value: datetime) -> datetime:
    # Ticks are compared as text on SQLite: always written in UTC.
    return value.astimezone(UTC)


def _schedule(row: Row[Any]) -> MonitorSchedule:
    return MonitorSchedule(
        name=row.name,
        endpoint=row.endpoint,
        every=timedelta(seconds=row.every_s) if row.every_s is not None else None,
        cron=row.cron,
        window=timedelta(seconds=row.window_s),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        drift_config=_drift_config(row.name, row.drift_config),
    )


def _drift_config(name: str, stored: Mapping[str, Any] | None) -> DriftConfig | None:
    """A schedule's stored thresholds (only those that differ from the defaults are stored,
    so a later change of a default reaches every schedule that did not set it). One this
    version cannot read (a setting renamed or removed since) must not stop every other
    schedule: that schedule checks with the defaults and the log says so."""
    if stored is None:
        return None
    try:
        return DriftConfig.from_dict(stored)
    except InvalidInput as exc:
        log.error(
            "monitor schedule %r: its stored drift thresholds cannot be read (%s); its runs "
            "use the defaults until it is set again",
            name,
            exc.message,
        )
        return None


def _run(row: Row[Any], *, reports: bool = True) -> MonitorRun:
    """The run of ``row``; with ``reports`` False, a row read without them."""
    return MonitorRun(
        schedule=row.schedule,
        endpoint=row.endpoint,
        tick=aware(row.tick),
        window=timedelta(seconds=row.window_s),
        holder=row.holder,
        started_at=aware(row.started_at),
        status=RunStatus(row.status),
        finished_at=aware(row.finished_at) if row.finished_at is not None else None,
        reports=tuple(dict(r) for r in row.reports) if reports else (),
        scores={str(v): {str(k): float(x) for k, x in s.items()} for v, s in row.scores.items()},
        error=row.error,
    )


def _no_schedule(name: str) -> NotFound:
    return NotFound(f"no monitor schedule named {name!r}")


class SqlMonitorStore(MonitorStore):
    """A :class:`MonitorStore` on an engine whose schema is already migrated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put_schedule(self, schedule: MonitorSchedule) -> tuple[MonitorSchedule, bool]:
        values = {
            "endpoint": schedule.endpoint,
            "every_s": int(schedule.every.total_seconds()) if schedule.every else None,
            "cron": schedule.cron,
            "window_s": int(schedule.window.total_seconds()),
            "updated_at": schedule.updated_at,
            "drift_config": (
                schedule.drift_config.changes() if schedule.drift_config is not None else None
            ),
        }
        where = monitor_schedules.c.name == schedule.name
        with transaction(self._engine, write=True) as conn:
            if conn.execute(monitor_schedules.update().where(where).values(**values)).rowcount:
                created = False
            else:
                conn.execute(
                    monitor_schedules.insert().values(
                        name=schedule.name, created_at=schedule.created_at, **values
                    )
                )
                created = True
            row = conn.execute(sa.select(monitor_schedules).where(where)).one()
        return _schedule(row), created

    def get_schedule(self, name: str) -> MonitorSchedule:
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(
                sa.select(monitor_schedules).where(monitor_schedules.c.name == name)
            ).first()
        if row is None:
            raise _no_schedule(name)
        return _schedule(row)

    def list_schedules(self) -> list[MonitorSchedule]:
        with transaction(self._engine, write=False) as conn:
            rows = conn.execute(sa.select(monitor_schedules).order_by(monitor_schedules.c.name))
            return [_schedule(r) for r in rows]

    def delete_schedule(self, name: str) -> None:
        with transaction(self._engine, write=True) as conn:
            gone = conn.execute(
                monitor_schedules.delete().where(monitor_schedules.c.name == name)
            ).rowcount
        if not gone:
            raise _no_schedule(name)

    def start_run(self, run: MonitorRun) -> MonitorRun:
        key = sa.and_(
            monitor_runs.c.schedule == run.schedule, monitor_runs.c.tick == _utc(run.tick)
        )
        values = {
            "endpoint": run.endpoint,
            "window_s": int(run.window.total_seconds()),
            "holder": run.holder,
            "status": RunStatus.RUNNING.value,
            "started_at": run.started_at,
            "finished_at": None,
            "reports": [],
            "scores": {},
            "error": None,
        }
        with transaction(self._engine, write=True) as conn:
            # A run left running by a holder that died is taken over by the lease's new holder.
            replaced = conn.execute(
                monitor_runs.update()
                .where(key, monitor_runs.c.status == RunStatus.RUNNING.value)
                .values(**values)
            ).rowcount
            if not replaced:
                if conn.execute(sa.select(monitor_runs.c.id).where(key)).first() is not None:
                    raise AlreadyExists(
                        f"the run of {run.schedule!r} at {run.tick.isoformat()} already ended"
                    )
                conn.execute(
                    monitor_runs.insert().values(
                        schedule=run.schedule, tick=_utc(run.tick), **values
                    )
                )
            return _run(conn.execute(sa.select(monitor_runs).where(key)).one())

    def finish_run(
        self,
        schedule: str,
        tick: datetime,
        *,
        status: RunStatus,
        finished_at: datetime,
        reports: Sequence[Mapping[str, Any]] = (),
        scores: Mapping[str, Mapping[str, float]] | None = None,
        error: str | None = None,
    ) -> MonitorRun:
        key = sa.and_(monitor_runs.c.schedule == schedule, monitor_runs.c.tick == _utc(tick))
        with transaction(self._engine, write=True) as conn:
            done = conn.execute(
                monitor_runs.update()
                .where(key)
                .values(
                    status=status.value,
                    finished_at=finished_at,
                    reports=[dict(r) for r in reports],
                    scores={v: dict(s) for v, s in (scores or {}).items()},
                    error=error,
                )
            ).rowcount
            if not done:
                raise NotFound(f"no run of {schedule!r} at {tick.isoformat()}")
            return _run(conn.execute(sa.select(monitor_runs).where(key)).one())

    def list_runs(self, schedule: str, limit: int = 50) -> list[MonitorRun]:
        query = (
            sa.select(monitor_runs)
            .where(monitor_runs.c.schedule == schedule)
            .order_by(monitor_runs.c.tick.desc())
            .limit(limit)
        )
        with transaction(self._engine, write=False) as conn:
            return [_run(r) for r in conn.execute(query)]

    def prune_runs(self, before: datetime) -> int:
        with transaction(self._engine, write=True) as conn:
            return int(
                conn.execute(
                    monitor_runs.delete().where(monitor_runs.c.tick < _utc(before))
                ).rowcount
            )

    def runs_between(self, endpoint: str, since: datetime, until: datetime) -> list[MonitorRun]:
        # Without their reports: a month of a 10 s schedule's reports is tens of GB in memory.
        columns = [c for c in monitor_runs.c if c.name != "reports"]
        query = (
            sa.select(*columns)
            .where(
                monitor_runs.c.endpoint == endpoint,
                monitor_runs.c.status == RunStatus.SUCCEEDED.value,
                monitor_runs.c.tick >= _utc(since),
                monitor_runs.c.tick < _utc(until),
            )
            .order_by(monitor_runs.c.tick, monitor_runs.c.id)
        )
        with transaction(self._engine, write=False) as conn:
            return [_run(r, reports=False) for r in conn.execute(query)]
