"""Judging an alarm rule on its last M windows: the N-of-M rule, and no data never OK unless
the rule says how missing data counts.

Pure: the caller reads the points (per-minute metric values, or drift scores of stored runs)
and passes them with their times; this module buckets them into windows, reduces each window
with the rule's statistic and decides the state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from modelyard.domain.alarms import AlarmRule, AlarmState, Evaluation, MissingData, WindowValue

_MICROSECOND = timedelta(microseconds=1)


def window_bounds(rule: AlarmRule, end: datetime) -> list[tuple[datetime, datetime]]:
    """The rule's M windows ``[start, end)`` that end at ``end``, newest first."""
    return [(end - (k + 1) * rule.window, end - k * rule.window) for k in range(rule.windows)]


def judge(
    rule: AlarmRule,
    end: datetime,
    points: Iterable[tuple[datetime, float]],
    *,
    missing: MissingData | None = None,
) -> Evaluation:
    """The rule's state from ``points`` (time, value) over the windows ending at ``end``.

    A window without a finite point has no data; ``missing`` (default: the rule's) says how it
    counts: without data, breaching, not breaching, or as the value 0. ALARM when at least N
    windows breach; OK when more than M - N windows do not breach (so N breaches are
    impossible whatever the windows without data hold); INSUFFICIENT_DATA otherwise, which
    includes no data at all under the default.
    """
    missing = rule.missing if missing is None else missing
    bounds = window_bounds(rule, end)
    buckets: list[list[float]] = [[] for _ in bounds]
    oldest = bounds[-1][0]
    for at, value in points:
        if not oldest <= at < end or not math.isfinite(value):
            continue
        # ``end - at`` is in (k·window, (k+1)·window] for window k: whole microseconds.
        buckets[(end - at - _MICROSECOND) // rule.window].append(value)
    windows = []
    for (start, stop), values in zip(bounds, buckets, strict=True):
        if values:
            reduced = rule.statistic.reduce(values)
            breaching = rule.comparison.breaches(reduced, rule.threshold)
            windows.append(WindowValue(start, stop, reduced, len(values), breaching))
        elif missing is MissingData.ZERO:
            breaching = rule.comparison.breaches(0.0, rule.threshold)
            windows.append(WindowValue(start, stop, 0.0, 0, breaching))
        else:
            counted = _COUNTED.get(missing)
            windows.append(WindowValue(start, stop, None, 0, counted))
    breaches = sum(w.breaching is True for w in windows)
    calm = sum(w.breaching is False for w in windows)
    if breaches >= rule.datapoints:
        state = AlarmState.ALARM
    elif calm > rule.windows - rule.datapoints:
        state = AlarmState.OK
    else:
        state = AlarmState.INSUFFICIENT_DATA
    reason = _reason(rule, windows, breaches, state, missing)
    return Evaluation(state, reason, tuple(windows))


# How a window without data counts as breaching, by policy (ZERO gives it a value instead).
_COUNTED = {MissingData.BREACHING: True, MissingData.NOT_BREACHING: False}


def _reason(
    rule: AlarmRule,
    windows: list[WindowValue],
    breaches: int,
    state: AlarmState,
    policy: MissingData,
) -> str:
    seen = ", ".join("no data" if w.value is None else f"{w.value:.6g}" for w in windows)
    missing = sum(w.points == 0 for w in windows)
    if state is AlarmState.INSUFFICIENT_DATA and missing == len(windows):
        return f"no data for {rule.metric} in the last {rule.windows} window(s)"
    head = f"{breaches} of {rule.windows} window(s) breach"
    if missing:
        counted = "" if policy is MissingData.INSUFFICIENT else f", counted as {policy.value}"
        head += f" ({missing} without data{counted})"
    return f"{head}; needs {rule.datapoints} for ALARM: {rule.condition}; values {seen}"
