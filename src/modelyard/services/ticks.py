"""When schedules tick: epoch-aligned intervals and five-field UTC cron expressions.

Every process computes the same ticks from the same schedule (no state, no local time zone),
which is what lets a lease per ``(schedule, tick)`` make each tick run once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard.domain.monitors import MonitorSchedule
from modelyard.errors import InvalidInput

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)


def _cron() -> Any:
    # Imported on use: only cron schedules need it.
    from croniter import croniter  # type: ignore[import-untyped]

    return croniter


def validate_cron(expression: str) -> str:
    """Return ``expression`` normalised (single spaces) if it is a five-field cron expression.

    Raises:
        InvalidInput: otherwise, naming the expression.
    """
    fields = expression.split()
    if len(fields) != 5 or not _cron().is_valid(" ".join(fields)):
        raise InvalidInput(
            f"invalid cron expression {expression!r}: use five fields, minute hour day-of-month "
            "month day-of-week, in UTC (e.g. '*/10 * * * *')"
        )
    return " ".join(fields)


def floor_tick(now: datetime, period: timedelta) -> datetime:
    """The latest multiple of ``period`` since the Unix epoch at or before ``now`` (UTC)."""
    step = int(period.total_seconds() * 1_000_000)
    elapsed = (now.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=elapsed - elapsed % step)


def latest_tick(schedule: MonitorSchedule, now: datetime) -> datetime | None:
    """The latest tick of ``schedule`` at or before ``now``; None when that tick comes before
    the schedule was set (ticks before it never run)."""
    if schedule.every is not None:
        tick = floor_tick(now, schedule.every)
    else:
        assert schedule.cron is not None
        # Cron ticks fall on whole minutes; get_prev is strictly before its start, so start
        # just after the minute ``now`` is in.
        start = now.astimezone(UTC).replace(second=0, microsecond=0) + _MINUTE
        tick = _cron()(schedule.cron, start).get_prev(datetime).astimezone(UTC)
    return tick if tick >= schedule.created_at else None


def next_tick(schedule: MonitorSchedule, now: datetime) -> datetime:
    """The first tick of ``schedule`` after ``now``."""
    if schedule.every is not None:
        return floor_tick(now, schedule.every) + schedule.every
    assert schedule.cron is not None
    found: datetime = _cron()(schedule.cron, now.astimezone(UTC)).get_next(datetime)
    return found.astimezone(UTC)
