"""Per-minute series cut down to a chart's width: at most :data:`MAX_POINTS` points per line.

A day of per-minute points is 1,440 values; a chart a few hundred pixels wide shows no more
than a few hundred, and a page of many charts stays small. Minutes are grouped into equal
buckets, aligned to the window's start, and each bucket is summarised by the series' own
aggregation: ``max`` and ``min`` keep the extreme (a latency spike stays visible), ``sum`` and
``mean`` give the mean over the minutes that have data (so a count reads per minute whatever
the bucket size). A bucket without any value is None: a gap in the line, never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

#: The most points one line of a chart gets.
MAX_POINTS = 240


def bucket_minutes(start: datetime, end: datetime, max_points: int = MAX_POINTS) -> int:
    """How many minutes one point of a chart over ``[start, end)`` stands for (at least 1)."""
    minutes = max(1, math.ceil((end - start).total_seconds() / 60))
    return max(1, math.ceil(minutes / max_points))


def bucketed(
    points: Iterable[tuple[datetime, float | None]],
    *,
    start: datetime,
    end: datetime,
    aggregation: str,
    max_points: int = MAX_POINTS,
) -> tuple[tuple[datetime, ...], tuple[float | None, ...]]:
    """Group per-minute ``points`` of ``[start, end)`` into buckets.

    Args:
        points: ``(minute, value)`` pairs, value None for a minute without data; points
            outside the window are ignored.
        start: The window's start (the first bucket starts here).
        end: The window's end.
        aggregation: ``sum``, ``mean``, ``min`` or ``max`` (see the module docstring).
        max_points: The most buckets.

    Returns:
        Each bucket's start, and its value (None when no minute in it has one).
    """
    size = timedelta(minutes=bucket_minutes(start, end, max_points))
    count = max(1, math.ceil((end - start) / size))
    groups: list[list[float]] = [[] for _ in range(count)]
    for minute, value in points:
        if value is None or not math.isfinite(value) or not start <= minute < end:
            continue
        groups[min(int((minute - start) / size), count - 1)].append(value)
    times = tuple(start + i * size for i in range(count))
    return times, tuple(_reduce(g, aggregation) for g in groups)


def _reduce(values: list[float], aggregation: str) -> float | None:
    if not values:
        return None
    if aggregation == "max":
        return max(values)
    if aggregation == "min":
        return min(values)
    return math.fsum(values) / len(values)
