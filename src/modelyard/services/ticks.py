"""When schedules tick: epoch-aligned intervals, and five-field cron expressions in UTC (monitor
schedules) or in an IANA time zone (batch schedules).

Every process computes the same ticks from the same schedule (no state, never the machine's
local time zone), which is what lets a lease per ``(schedule, tick)`` make each tick run once.

In a time zone, a cron expression matches local wall-clock times, each at most once, and every
tick is handed out as a UTC instant (:func:`cron_latest`, :func:`cron_next`). Across daylight
saving changes:

- a wall time that occurs twice (the hour repeated when clocks go back) ticks once, at its
  first occurrence: ``30 2 * * *`` in Europe/Paris ticks at 02:30 CEST on the last Sunday of
  October, not again an hour later; an hourly expression skips the repeated hour;
- a wall time that does not occur (the hour skipped when clocks go forward) ticks at the first
  instant after the gap: ``30 2 * * *`` ticks at 03:00 CEST on the last Sunday of March, as
  cron does. Several such wall times (``*/15 2 * * *``) make one tick there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from modelyard.domain.monitors import MonitorSchedule
from modelyard.domain.schedules import MAX_MISSED_COUNTED
from modelyard.errors import InvalidInput

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: croniter's random (``R``) and hashed (``H``) values: a value of their own in each process.
_RANDOM = re.compile(r"\b[RH]\b", re.IGNORECASE)
_MINUTE = timedelta(minutes=1)


def _cron() -> Any:
    # Imported on use: only cron schedules need it.
    from croniter import croniter  # type: ignore[import-untyped]

    return croniter


def validate_cron(expression: str, zone: str = "UTC") -> str:
    """Return ``expression`` normalised (single spaces) if it is a five-field cron expression
    that ever ticks.

    Args:
        zone: The time zone it is read in, for the message.

    Raises:
        InvalidInput: otherwise, naming the expression (``0 6 30 2 *``, February 30th, never
            ticks).
    """
    fields = expression.split()
    normal = " ".join(fields)
    if _RANDOM.search(normal):
        raise InvalidInput(
            f"invalid cron expression {expression!r}: R and H (random and hashed values) are "
            "not allowed: every scheduler must compute the same ticks"
        )
    if len(fields) != 5 or not _cron().is_valid(normal):
        bad = _bad_field(fields)
        said = (
            f"its {bad[0]} field {bad[1]!r} is not valid ({bad[2]}); the five fields are"
            if bad is not None
            else "use five fields,"
        )
        raise InvalidInput(
            f"invalid cron expression {expression!r}: {said} minute hour day-of-month "
            f"month day-of-week, in {zone} (e.g. '*/10 * * * *' or '0 6 * * 1')"
        )
    backwards = _backwards_range(fields)
    if backwards is not None:
        name, part, (low, high), (first, last) = backwards
        raise InvalidInput(
            f"invalid cron expression {expression!r}: its {name} field's range {part!r} runs "
            f"from high to low (cron refuses it); for a range that wraps round, write "
            f"{_wrapped(part, low, high, first, last)}"
        )
    try:
        _cron()(normal, datetime(2000, 1, 1)).get_next(datetime)
    except ValueError:  # croniter's CroniterBadDateError: no date matches
        raise InvalidInput(
            f"invalid cron expression {expression!r}: no date ever matches it"
        ) from None
    return normal


#: Each field's name and values, in order.
_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT, 0 and 7: Sunday"),
)


_NAMES = {
    name: number
    for names in (
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
    )
    for number, name in enumerate(names, start=1 if names[0] == "jan" else 0)
}


def _wrapped(part: str, low: int, high: int, first: int, last: int) -> str:
    """``low-high[/step]`` (``low`` past ``high``) as the two ranges that wrap round the
    field's ``first..last``, the step going on across the wrap (23-3/2: 23, then 1, 3)."""
    step = int(part.split("/", 1)[1]) if "/" in part else 1
    suffix = f"/{step}" if step > 1 else ""
    late = f"{low}-{last}{suffix}" if low < last else str(low)
    after = low + ((last - low) // step + 1) * step  # the first value past ``last``
    start = after - (last + 1) + first
    if start > high:
        return late
    early = f"{start}-{high}{suffix}" if start < high else str(start)
    return f"{late},{early}"


#: Each field's least and greatest value.
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _backwards_range(
    fields: list[str],
) -> tuple[str, str, tuple[int, int], tuple[int, int]] | None:
    """The first range of five valid ``fields`` whose start is past its end (``5-2``; croniter
    takes it as wrapping round, cron refuses it as the typo it usually is): its field's name,
    the range, its two ends as numbers and the field's least and greatest value."""
    for (name, _), bounds, field in zip(_FIELDS, _BOUNDS, fields, strict=True):
        for part in field.split(","):
            ends = part.split("/")[0].split("-")
            if len(ends) != 2:
                continue
            low, high = (str(_NAMES.get(e.lower(), e)) for e in ends)
            if not (low.isdigit() and high.isdigit()):
                continue
            end = int(high)
            if name == "day-of-week" and end == 0:  # MON-SUN, 1-0: Sunday is 7 too
                end = 7
            if int(low) > end:
                return name, part, (int(low), end), bounds
    return None


def _bad_field(fields: list[str]) -> tuple[str, str, str] | None:
    """The first of five ``fields`` that is invalid on its own (the others made ``*``): its
    name, its text and the values it takes; None when there are not five or none is."""
    if len(fields) != 5:
        return None
    for index, (name, values) in enumerate(_FIELDS):
        alone = ["*"] * 5
        alone[index] = fields[index]
        if not _cron().is_valid(" ".join(alone)):
            return name, fields[index], values
    return None


def validate_timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Paris``, ``UTC``).

    Raises:
        InvalidInput: not a time zone this machine's time zone database knows, naming it.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris', "
            "'America/New_York' or 'UTC'"
        ) from None


#: Files of the zone database that load as zones but are no IANA zone: ``localtime`` is the
#: zone of whichever machine reads it (and is listed among the available zones); the
#: ``posix/`` and ``right/`` copies and ``posixrules`` are not listed, nor a name spelt in
#: other capitals, which a case-insensitive filesystem loads (``right/Europe/Paris`` counts
#: leap seconds, which zoneinfo misreads: 6:00 came out as 04:00 UTC in winter).
_NOT_IANA = frozenset(("localtime",))


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_IANA


def check_timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` for a new schedule: as :func:`validate_timezone`, and not one
    of the zone database's files that read differently on another machine (``localtime``),
    since every scheduler must compute the same ticks.

    Raises:
        InvalidInput: naming it.
    """
    zone = validate_timezone(name)
    if name not in _iana_names():
        raise InvalidInput(
            f"{name!r} is not an IANA time zone but a file of this machine's time zone "
            "database, which may read differently on the machine that runs the schedule: "
            "use an IANA name such as 'Europe/Paris', 'America/New_York' or 'UTC'"
        )
    return zone


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


# -- cron in a time zone ---------------------------------------------------------------------

#: The most cron matches :func:`cron_latest` and :func:`cron_next` step over past ``now`` (a
#: repeated hour of a once-a-minute expression is 60); :func:`count_ticks` stops there too.
_MAX_STEPS = 1500


def _instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of the naive wall time ``local`` in ``zone``: its first occurrence when
    it occurs twice, the end of the gap when it does not occur. Never decreasing in ``local``."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first
    # In a gap: fold=1 reads it with the offset after the change (an instant before the
    # change), fold=0 with the one before (an instant after it); the change lies between.
    before = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after_offset = first.astimezone(zone).utcoffset()
    low, high = before, first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def cron_latest(expression: str, zone: ZoneInfo, now: datetime) -> datetime:
    """The latest tick of ``expression`` read in ``zone`` at or before ``now``, in UTC.

    Raises:
        InvalidInput: the expression never ticked before ``now`` (croniter's search gave up).
    """
    wall = _wall(now, zone)
    try:
        # Start just after the minute ``now`` is in (get_prev is strictly before its start).
        found = _cron()(expression, wall.replace(second=0, microsecond=0) + _MINUTE)
        local = found.get_prev(datetime)
    except ValueError:
        raise InvalidInput(f"cron expression {expression!r} has no tick before {now}") from None
    latest = _instant(local, zone)
    # A later wall time may still come before ``now``: when clocks went back, ``now`` is in
    # the repeated hour's second pass, whose wall times already ticked (in the first pass).
    forward = _cron()(expression, local)
    try:
        for _ in range(_MAX_STEPS):
            candidate = _instant(forward.get_next(datetime), zone)
            if candidate > now:
                break
            latest = candidate
    except ValueError:  # no later date matches: the one found is the latest
        pass
    return latest


def cron_next(expression: str, zone: ZoneInfo, now: datetime) -> datetime:
    """The first tick of ``expression`` read in ``zone`` after ``now``, in UTC.

    Raises:
        InvalidInput: the expression never ticks again (croniter's search gave up).
    """
    found = _cron()(expression, _wall(now, zone))
    try:
        for _ in range(_MAX_STEPS):
            candidate = _instant(found.get_next(datetime), zone)
            if candidate > now:  # not so in a repeated hour's second pass: those ticked already
                return candidate
    except ValueError:
        pass
    raise InvalidInput(f"cron expression {expression!r} has no tick after {now}")


def count_ticks(
    expression: str,
    zone: ZoneInfo,
    after: datetime,
    before: datetime,
    limit: int = MAX_MISSED_COUNTED,
) -> int:
    """How many ticks of ``expression`` read in ``zone`` fall in ``(after, before)``, counting
    at most ``limit``."""
    found = _cron()(expression, _wall(after, zone))
    count, last = 0, after
    try:
        for _ in range(limit + _MAX_STEPS):
            tick = _instant(found.get_next(datetime), zone)
            if tick <= last:  # a repeated hour's second pass, or a gap's wall times after the
                continue  # first (they tick at the same instant)
            if tick >= before or count >= limit:
                break
            count, last = count + 1, tick
    except ValueError:  # no later date matches
        pass
    return count
