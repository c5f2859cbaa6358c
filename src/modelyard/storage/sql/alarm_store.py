"""``SqlAlarmStore``: alarm rules, their state and history on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from modelyard.domain.alarms import (
    STATE_CHANGE,
    AlarmEvent,
    AlarmRule,
    AlarmState,
    AlarmStatus,
    Comparison,
    Evaluation,
    MissingData,
    Notification,
    SinkSpec,
    Statistic,
    WindowValue,
)
from modelyard.errors import AlreadyExists, NotFound
from modelyard.storage.monitoring import INITIAL_STATE, AlarmStore
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import alarm_history, alarm_rules
from modelyard.storage.sql.timestamps import aware


def _status(row: Row[Any]) -> AlarmStatus:
    rule = AlarmRule(
        name=row.name,
        endpoint=row.endpoint,
        variant=row.variant,
        metric=row.metric,
        comparison=Comparison(row.comparison),
        threshold=float(row.threshold),
        datapoints=int(row.datapoints),
        windows=int(row.windows),
        window=timedelta(seconds=row.window_s),
        statistic=Statistic(row.statistic),
        sinks=tuple(SinkSpec.from_dict(s) for s in row.sinks),
        created_at=aware(row.created_at),
        missing=MissingData(row.missing),
    )
    return AlarmStatus(
        rule=rule,
        state=AlarmState(row.state),
        reason=row.reason,
        since=aware(row.state_since),
        evaluated_at=aware(row.evaluated_at) if row.evaluated_at is not None else None,
    )


def _event(row: Row[Any]) -> AlarmEvent:
    return AlarmEvent(
        id=int(row.id),
        alarm=row.alarm,
        endpoint=row.endpoint,
        at=aware(row.at),
        old=AlarmState(row.old_state),
        new=AlarmState(row.new_state),
        reason=row.reason,
        windows=tuple(WindowValue.from_dict(w) for w in row.windows),
        notifications=tuple(Notification.from_dict(n) for n in row.notifications),
        kind=row.kind,
    )


def _no_alarm(name: str) -> NotFound:
    return NotFound(f"no alarm named {name!r}")


class SqlAlarmStore(AlarmStore):
    """An :class:`AlarmStore` on an engine whose schema is already migrated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_rule(self, rule: AlarmRule, reason: str) -> AlarmStatus:
        where = alarm_rules.c.name == rule.name
        with transaction(self._engine, write=True) as conn:
            if conn.execute(sa.select(alarm_rules.c.id).where(where)).first() is not None:
                raise AlreadyExists(f"an alarm named {rule.name!r} already exists")
            conn.execute(
                alarm_rules.insert().values(
                    name=rule.name,
                    endpoint=rule.endpoint,
                    variant=rule.variant,
                    metric=rule.metric,
                    comparison=rule.comparison.value,
                    threshold=rule.threshold,
                    datapoints=rule.datapoints,
                    windows=rule.windows,
                    window_s=int(rule.window.total_seconds()),
                    statistic=rule.statistic.value,
                    missing=rule.missing.value,
                    sinks=[s.to_record() for s in rule.sinks],
                    created_at=rule.created_at,
                    state=INITIAL_STATE.value,
                    reason=reason,
                    state_since=rule.created_at,
                    evaluated_at=None,
                )
            )
            return _status(conn.execute(sa.select(alarm_rules).where(where)).one())

    def get(self, name: str) -> AlarmStatus:
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(sa.select(alarm_rules).where(alarm_rules.c.name == name)).first()
        if row is None:
            raise _no_alarm(name)
        return _status(row)

    def list_rules(self, endpoint: str | None = None) -> list[AlarmStatus]:
        query = sa.select(alarm_rules).order_by(alarm_rules.c.name)
        if endpoint is not None:
            query = query.where(alarm_rules.c.endpoint == endpoint)
        with transaction(self._engine, write=False) as conn:
            return [_status(r) for r in conn.execute(query)]

    def delete(self, name: str) -> None:
        with transaction(self._engine, write=True) as conn:
            if not conn.execute(alarm_rules.delete().where(alarm_rules.c.name == name)).rowcount:
                raise _no_alarm(name)
            conn.execute(alarm_history.delete().where(alarm_history.c.alarm == name))

    def record(self, name: str, at: datetime, evaluation: Evaluation) -> AlarmEvent | None:
        at = at.astimezone(UTC)
        where = alarm_rules.c.name == name
        with transaction(self._engine, write=True) as conn:
            row = conn.execute(sa.select(alarm_rules).where(where)).first()
            if row is None:
                raise _no_alarm(name)
            # Forward only, checked in the UPDATE itself: a slow evaluation of an older window
            # must not overwrite a newer one's state; nor one of a rule deleted and made again
            # under its name meanwhile (its windows end after it was made) set the new one's.
            later = sa.and_(
                sa.or_(alarm_rules.c.evaluated_at.is_(None), alarm_rules.c.evaluated_at < at),
                alarm_rules.c.created_at < at,
            )
            changed = row.state != evaluation.state.value
            values: dict[str, Any] = {"evaluated_at": at}
            if changed:
                values.update(
                    state=evaluation.state.value, reason=evaluation.reason, state_since=at
                )
            elif row.reason != evaluation.reason:
                values["reason"] = evaluation.reason
            if not conn.execute(alarm_rules.update().where(where, later).values(**values)).rowcount:
                return None
            if not changed:
                return None
            result = conn.execute(
                alarm_history.insert().values(
                    alarm=name,
                    endpoint=row.endpoint,
                    at=at,
                    old_state=row.state,
                    new_state=evaluation.state.value,
                    reason=evaluation.reason,
                    windows=[w.to_dict() for w in evaluation.windows],
                    notifications=[],
                )
            )
            assert result.inserted_primary_key is not None
            inserted = result.inserted_primary_key[0]
            event = conn.execute(
                sa.select(alarm_history).where(alarm_history.c.id == inserted)
            ).one()
            return _event(event)

    def record_message(self, event: AlarmEvent) -> AlarmEvent:
        with transaction(self._engine, write=True) as conn:
            if (
                conn.execute(
                    sa.select(alarm_rules.c.id).where(alarm_rules.c.name == event.alarm)
                ).first()
                is None
            ):
                raise _no_alarm(event.alarm)
            result = conn.execute(
                alarm_history.insert().values(
                    alarm=event.alarm,
                    endpoint=event.endpoint,
                    at=event.at.astimezone(UTC),
                    old_state=event.old.value,
                    new_state=event.new.value,
                    reason=event.reason,
                    windows=[w.to_dict() for w in event.windows],
                    notifications=[n.to_dict() for n in event.notifications],
                    kind=event.kind,
                )
            )
            assert result.inserted_primary_key is not None
            inserted = result.inserted_primary_key[0]
            row = conn.execute(sa.select(alarm_history).where(alarm_history.c.id == inserted))
            return _event(row.one())

    def set_notifications(self, event_id: int, notifications: Sequence[Notification]) -> None:
        with transaction(self._engine, write=True) as conn:
            conn.execute(
                alarm_history.update()
                .where(alarm_history.c.id == event_id)
                .values(notifications=[n.to_dict() for n in notifications])
            )

    def latest_events(self, names: Sequence[str]) -> list[AlarmEvent]:
        if not names:
            return []
        newest = (
            sa.select(sa.func.max(alarm_history.c.id))
            .where(alarm_history.c.alarm.in_(list(names)))
            .group_by(alarm_history.c.alarm, alarm_history.c.kind)
        )
        query = sa.select(alarm_history).where(alarm_history.c.id.in_(newest))
        with transaction(self._engine, write=False) as conn:
            return [_event(r) for r in conn.execute(query.order_by(alarm_history.c.id))]

    def set_notification(self, event_id: int, index: int, notification: Notification) -> None:
        where = alarm_history.c.id == event_id
        with transaction(self._engine, write=True) as conn:
            # Locked while replaced (PostgreSQL; SQLite's write transaction is alone): two
            # processes retrying two sinks of one entry must not undo each other's result.
            row = conn.execute(
                sa.select(alarm_history.c.notifications).where(where).with_for_update()
            ).first()
            if row is None or not 0 <= index < len(row.notifications):
                return
            entries = list(row.notifications)
            entries[index] = notification.to_dict()
            conn.execute(alarm_history.update().where(where).values(notifications=entries))

    def prune_history(self, before: datetime) -> int:
        latest = (
            sa.select(sa.func.max(alarm_history.c.id))
            .where(alarm_history.c.kind == STATE_CHANGE)
            .group_by(alarm_history.c.alarm)
        )
        old = alarm_history.c.at < before.astimezone(UTC)
        with transaction(self._engine, write=True) as conn:
            deleted = conn.execute(
                alarm_history.delete().where(old, alarm_history.c.id.not_in(latest))
            )
            return int(deleted.rowcount or 0)

    def history(self, name: str, limit: int = 100) -> list[AlarmEvent]:
        query = (
            sa.select(alarm_history)
            .where(alarm_history.c.alarm == name)
            .order_by(alarm_history.c.id.desc())
            .limit(limit)
        )
        with transaction(self._engine, write=False) as conn:
            if conn.execute(sa.select(alarm_rules.c.id).where(alarm_rules.c.name == name)).first():
                return [_event(r) for r in conn.execute(query)]
        raise _no_alarm(name)
