"""Durations and points in time as people type them: ``30m``, ``1h``, ``2d12h``, or an ISO time.

Used wherever a command takes a window (``--since 1h``) or a period (``--every 10m``).

A duration is one or more parts, each an ASCII decimal (``90``, ``1.5``) and a lower-case unit
(``ms``, ``s``, ``m`` for minutes, ``h``, ``d``, ``w``), each unit at most once. An upper-case
unit is refused rather than guessed at (is ``5M`` minutes or months?), and so is a repeated
one (``1h1h``: a typo more often than two hours).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from modelyard.errors import InvalidInput

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
# Any case, so that a unit in upper case is named as such rather than as no unit at all.
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)", re.IGNORECASE)
#: The longest duration taken (ten years): no window, period or age needs more, and a time that
#: long before now stays a date Python can hold.
MAX_DURATION = timedelta(days=3660)
#: The longest window a read or a check looks back over (a metric series, a drift run, a
#: report): a month of minutes is 44,640 points per series.
MAX_WINDOW = timedelta(days=31)


def parse_duration(text: str, *, zero_ok: bool = False) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``1h30m``, ``2d``, ``1w`` (units ms, s, m, h, d, w) → a
    positive timedelta; with ``zero_ok``, zero too (``0``, ``0s``, ``0h`` …), for a caller
    whose own check says what zero means.

    Raises:
        InvalidInput: naming the text, when it is not such a duration (a unit in upper
            case or given twice too), is zero (unless ``zero_ok``) or is longer than
            :data:`MAX_DURATION`.
    """
    if zero_ok and text.strip() == "0":
        return timedelta(0)
    parts = _parts(text)
    if parts is None:
        raise InvalidInput(
            f"not a duration: {text!r}; write a number and a unit (ms, s, m, h, d, w), "
            "e.g. 30m, 1h or 1h30m"
        )
    units = [unit for _, unit in parts]
    if any(unit != unit.lower() for unit in units):
        raise InvalidInput(
            f"not a duration: {text!r}; units are lower-case: ms, s, m (minutes; there is no "
            "unit of months), h, d, w"
        )
    repeated = next((unit for unit in units if units.count(unit) > 1), None)
    if repeated is not None:
        raise InvalidInput(
            f"not a duration: {text!r} gives the unit {repeated!r} more than once; give each "
            "unit once, e.g. 1h30m"
        )
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0 and not zero_ok:
        raise InvalidInput(f"a duration must be longer than zero, got {text!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise InvalidInput(f"a duration must be at most ten years (3660d), got {text!r}")
    return timedelta(seconds=seconds)


def _parts(text: str) -> list[tuple[str, str]] | None:
    """The (number, unit) parts ``text`` is made of, units in the case given, when it has the
    shape of a duration; else None."""
    cleaned = text.strip().replace(" ", "")
    parts: list[tuple[str, str]] = _PART.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        return None
    return parts


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC: a time without a zone is taken to be UTC, one with a zone is
    converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def length_of(value: object, what: str = "the duration") -> timedelta:
    """A duration given to the Python API: a ``timedelta``, or text as :func:`parse_duration`
    reads it (``"10m"``, ``"1h30m"``), as the CLI takes it. Its range is the caller's to check.

    Raises:
        InvalidInput: naming ``what`` and the value, when it is neither (or text that is not
            a duration).
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value, zero_ok=True)
    raise InvalidInput(
        f"{what} must be a timedelta or text such as 10m or 1h30m, got "
        f"{type(value).__name__} {value!r}"
    )


def point_in_time(value: object, now: datetime, what: str = "a time") -> datetime:
    """A time given to the Python API, in UTC: a ``datetime`` (no zone: UTC), or text as
    :func:`parse_time` reads it (``"1h"``: an hour before ``now``), as the CLI takes it.

    Raises:
        InvalidInput: naming ``what`` and the value, when it is neither.
    """
    if isinstance(value, datetime):
        try:
            return as_utc(value)
        except OverflowError:
            raise InvalidInput(f"{what}: {value.isoformat()} is out of range in UTC") from None
    if isinstance(value, str):
        return parse_time(value, now)
    raise InvalidInput(
        f"{what} must be a datetime or text such as 2026-01-31T07:00 or 1h, got "
        f"{type(value).__name__} {value!r}"
    )


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """A point in time: an ISO time (``2026-01-31T07:00``, ``2026-01-31``; without a zone it
    is UTC), or a duration meaning that long before ``now`` (``1h``: an hour ago).

    Raises:
        InvalidInput: naming the text, when it is neither.
    """
    stripped = text.strip()
    try:
        when = datetime.fromisoformat(stripped)
    except ValueError:
        pass
    else:
        try:
            return as_utc(when)
        except OverflowError:  # 0001-01-01T00:00+02:00 is before the first UTC time Python has
            raise InvalidInput(f"not a time: {text!r} is out of range in UTC") from None
    if _parts(stripped) is None:
        raise InvalidInput(
            f"not a time: {text!r}; give an ISO time (2026-01-31T07:00, UTC unless it names "
            "a zone) or a duration before now (30m, 1h, 2d)"
        )
    return (now or datetime.now(UTC)) - parse_duration(stripped)
