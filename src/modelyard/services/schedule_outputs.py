"""The outputs a batch schedule's runs write, checked when it is made: each run's output, its
``{tick}`` rendered, is a plain location, and (unless runs may overwrite) no two runs share
one, so that a later run never finds an earlier one's files and fails.

Runs may share an output in two ways, both refused: a format coarser than the schedule
(``{tick:%Y-%m-%d}`` on an hourly cron sends a day's runs to one folder: the next ticks
compare), and a format that comes round again (``{tick:%H}`` hourly, ``{tick:%d}`` daily,
``{tick:%a}``, a format without the year: the first run compares with the runs an hour, a
day, a week, a month and a year on, and with its own time a year on, as the calendar comes
round to every date and weekday again).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from modelyard.domain.batch import TransformRequest
from modelyard.domain.schedules import render_output
from modelyard.errors import InvalidInput
from modelyard.services.ticks import cron_next

__all__ = ["check_outputs"]

#: Consecutive ticks whose outputs are compared when a schedule is created.
_TICKS_COMPARED = 3
_JUST_BEFORE = timedelta(microseconds=1)


def check_outputs(
    name: str, request: TransformRequest, cron: str, zone: ZoneInfo, now: datetime
) -> None:
    """Check the outputs of schedule ``name``'s runs from ``now`` on (see the module doc).

    Raises:
        InvalidInput: naming two runs and the output they share, or an output with a ``..``
            segment or a control character (``{tick:..}`` or ``{tick:%n}`` are formats too).
    """
    seen: dict[str, datetime] = {}
    for tick in _ticks(cron, zone, now):
        output = _rendered(name, request.output, tick, zone)
        earlier = seen.setdefault(output, tick)
        if earlier != tick and not request.overwrite:
            raise _shared(name, earlier.isoformat(), tick.isoformat(), output)
    first = min(seen.values())
    a_year_on = _later(first.astimezone(zone), months=12)
    output = _rendered(name, request.output, a_year_on, zone)
    if output == _rendered(name, request.output, first, zone) and not request.overwrite:
        raise _shared(name, first.isoformat(), f"{a_year_on.isoformat()} (a year on)", output)


def _ticks(cron: str, zone: ZoneInfo, now: datetime) -> Iterator[datetime]:
    """The next ticks, then the first ticks an hour, a day, a week, a month and a year after
    the first one (UTC)."""
    tick = first = cron_next(cron, zone, now)
    yield first
    for _ in range(_TICKS_COMPARED - 1):
        tick = cron_next(cron, zone, tick)
        yield tick
    local = first.astimezone(zone)
    for later in (
        local + timedelta(hours=1),
        local + timedelta(days=1),
        local + timedelta(days=7),
        _later(local, months=1),
        _later(local, months=12),
    ):
        try:
            yield cron_next(cron, zone, later - _JUST_BEFORE)
        except InvalidInput:  # it never ticks again: nothing later to share an output with
            return


def _later(local: datetime, months: int) -> datetime:
    """The same wall time ``months`` on (on the month's last day when it has no such day)."""
    year, month = divmod(local.month - 1 + months, 12)
    year += local.year
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day)


def _rendered(name: str, template: str, tick: datetime, zone: ZoneInfo) -> str:
    output = render_output(template, tick.astimezone(zone))
    if ".." in output.replace("\\", "/").split("/") or any(ord(c) < 32 for c in output):
        raise InvalidInput(
            f"the output of schedule {name!r} renders as {output!r} at {tick.isoformat()}: "
            "no '..' segment or control character; use a strftime format of dates and "
            "times, such as {tick:%Y-%m-%d}"
        )
    return output


def _shared(name: str, first: str, second: str, output: str) -> InvalidInput:
    return InvalidInput(
        f"the runs of schedule {name!r} at {first} and {second} would both write to "
        f"{output!r}, and the second would find the first's files: use a {{tick}} format that "
        "names each run's time in full, down to the schedule's finest field (the default "
        "{tick} names the minute, with the year), or allow overwriting"
    )
