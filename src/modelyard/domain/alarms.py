"""Alarms: a rule on one metric series or drift score of an endpoint, its state, and the history
of its state changes.

A rule looks at the last ``windows`` (M) windows of ``window`` length each, reduces every window
to one value with its ``statistic``, and compares that value with ``threshold``. It is in ALARM
when at least ``datapoints`` (N) of the M windows breach, OK when the windows that have data and
do not breach leave fewer than N that could, and INSUFFICIENT_DATA otherwise: no data is never
OK, unless the rule says how missing data counts (:class:`MissingData`). Each state change is
kept in the history and sent to the rule's sinks.
The JSON form of each record (``to_dict``) is what ``--json`` and any later API print.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from modelyard.domain.metric_stats import CARRY_SCALE
from modelyard.domain.monitors import format_duration
from modelyard.domain.numbers import real_value, shown_value
from modelyard.errors import InvalidInput
from modelyard.redaction import mask_webhook_url


class AlarmState(StrEnum):
    """An alarm's state (the names CloudWatch users know)."""

    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class Comparison(StrEnum):
    """How a window's value is compared with the threshold; true means "breaching"."""

    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="

    def breaches(self, value: float, threshold: float) -> bool:
        """Whether ``value`` breaches ``threshold`` under this comparison."""
        if self is Comparison.GT:
            return value > threshold
        if self is Comparison.GE:
            return value >= threshold
        if self is Comparison.LT:
            return value < threshold
        return value <= threshold


_LARGEST = sys.float_info.max


class Statistic(StrEnum):
    """How the points of one window (per-minute values, or drift runs) become one value."""

    MEAN = "mean"
    SUM = "sum"
    MIN = "min"
    MAX = "max"

    def reduce(self, values: Sequence[float]) -> float:
        """The statistic of ``values`` (finite, not empty): always a finite float. A mean of
        values near the largest float is exact; a sum past it is the largest float (with its
        sign): it breaches any threshold a rule may have on that side."""
        if self is Statistic.MIN:
            return min(values)
        if self is Statistic.MAX:
            return max(values)
        try:
            total = math.fsum(values)
        except OverflowError:  # an intermediate sum passed the largest float: add them scaled
            scaled = math.fsum(v * CARRY_SCALE for v in values)
            if self is Statistic.MEAN:
                scaled /= len(values)
            # Scaling by a power of two loses no digit; past the largest float it is infinite.
            return max(-_LARGEST, min(_LARGEST, scaled / CARRY_SCALE))
        if self is Statistic.SUM:
            return max(-_LARGEST, min(_LARGEST, total))
        return total / len(values)


class MissingData(StrEnum):
    """How a window without data counts (CloudWatch's TreatMissingData).

    ``insufficient`` (the default) leaves it without data, so no data is never OK;
    ``breaching`` and ``not-breaching`` count it as such; ``zero`` gives it the value 0 (for
    counts, where a minute without rows is a minute without traffic: ``requests < 1`` then
    fires). Whatever the rule says, a window of an endpoint or variant that no longer exists
    stays without data.
    """

    INSUFFICIENT = "insufficient"
    BREACHING = "breaching"
    NOT_BREACHING = "not-breaching"
    ZERO = "zero"


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """Where a rule's state changes go: ``kind`` names the sink plug-in (``log``, ``webhook``),
    ``target`` its destination (the webhook's URL; None for the log).

    A webhook URL is a secret (whoever has it can post to the channel): it is stored as it is,
    in the metadata database, but everything shown (:attr:`label`, :meth:`to_dict`) masks its
    password, secret query values and path after the first segment."""

    kind: str
    target: str | None = None

    @property
    def shown_target(self) -> str | None:
        """The target with its secrets masked (``https://hooks.slack.com/services/***``)."""
        return None if self.target is None else mask_webhook_url(self.target)

    @property
    def label(self) -> str:
        """``log`` or ``webhook https://…``: the sink in words, its secrets masked."""
        return self.kind if self.target is None else f"{self.kind} {self.shown_target}"

    def to_dict(self) -> dict[str, Any]:
        """The wire shape (what ``--json`` prints): the target masked."""
        return {"kind": self.kind, "target": self.shown_target}

    def to_record(self) -> dict[str, Any]:
        """The stored shape: the target as given (the store is where the secret lives)."""
        return {"kind": self.kind, "target": self.target}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SinkSpec:
        """The inverse of :meth:`to_record`."""
        return cls(str(data["kind"]), data.get("target"))


#: Most windows a rule may look back over (a day of one-minute windows).
MAX_WINDOWS = 1440


@dataclass(frozen=True, slots=True)
class AlarmRule:
    """What an alarm watches and when it fires.

    Attributes:
        name: The alarm's name (unique).
        endpoint: The endpoint watched.
        variant: The one variant watched, or None for the endpoint as a whole.
        metric: A metric series name (``latency_p99_ms``) or a drift score (``drift.share``).
        comparison: How a window's value is compared with ``threshold``.
        threshold: The value a window is compared with.
        datapoints: N: how many of the last M windows must breach for ALARM.
        windows: M: how many windows are looked at.
        window: The length of one window (a whole number of minutes).
        statistic: How one window's points become its value.
        sinks: Where state changes are sent.
        created_at: When the rule was created (UTC).
        missing: How a window without data counts.
    """

    name: str
    endpoint: str
    variant: str | None
    metric: str
    comparison: Comparison
    threshold: float
    datapoints: int
    windows: int
    window: timedelta
    statistic: Statistic
    sinks: tuple[SinkSpec, ...]
    created_at: datetime
    missing: MissingData = MissingData.INSUFFICIENT

    def __post_init__(self) -> None:
        # From Python any value may come: a wrong type is refused by name, not a TypeError
        # (or 2.5 windows silently stored as 2).
        for field_, what in (("windows", "windows (M)"), ("datapoints", "datapoints (N)")):
            count = getattr(self, field_)
            if isinstance(count, bool) or not isinstance(count, numbers.Integral):
                raise InvalidInput(f"{what} must be a whole number, got {count!r}")
            object.__setattr__(self, field_, int(count))  # numpy's integers too
        threshold = real_value(self.threshold)  # an int past the largest float is none either
        if threshold is None:
            raise InvalidInput(f"the threshold must be a number, got {shown_value(self.threshold)}")
        object.__setattr__(self, "threshold", threshold)
        if not isinstance(self.window, timedelta):
            raise InvalidInput(f"the window must be a timedelta, got {self.window!r}")
        if not 1 <= self.windows <= MAX_WINDOWS:
            raise InvalidInput(f"windows (M) must be 1 to {MAX_WINDOWS}, got {self.windows}")
        if not 1 <= self.datapoints <= self.windows:
            raise InvalidInput(
                f"datapoints (N) must be 1 to the number of windows ({self.windows}), "
                f"got {self.datapoints}"
            )
        seconds = self.window.total_seconds()
        if seconds < 60 or seconds % 60:
            raise InvalidInput(
                f"the window must be a whole number of minutes, got {format_duration(self.window)}"
            )
        if not math.isfinite(self.threshold):
            raise InvalidInput(f"the threshold must be a finite number, got {self.threshold}")

    @property
    def condition(self) -> str:
        """``latency_p99_ms max > 250 for 3 of 5 windows of 5m``: the rule in words (with
        ``, missing data as zero`` … unless missing data is insufficient)."""
        words = (
            f"{self.metric} {self.statistic.value} {self.comparison.value} {self.threshold:g} "
            f"for {self.datapoints} of {self.windows} windows of {format_duration(self.window)}"
        )
        if self.missing is not MissingData.INSUFFICIENT:
            words += f", missing data as {self.missing.value}"
        return words

    def to_dict(self) -> dict[str, Any]:
        """The wire shape."""
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "variant": self.variant,
            "metric": self.metric,
            "comparison": self.comparison.value,
            "threshold": self.threshold,
            "datapoints": self.datapoints,
            "windows": self.windows,
            "window_s": int(self.window.total_seconds()),
            "statistic": self.statistic.value,
            "sinks": [s.to_dict() for s in self.sinks],
            "missing": self.missing.value,
            "condition": self.condition,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class WindowValue:
    """One evaluated window: ``[start, end)``, its value (None: no data) and whether it
    breached (None: no data)."""

    start: datetime
    end: datetime
    value: float | None
    points: int
    breaching: bool | None

    def to_dict(self) -> dict[str, Any]:
        """The wire (and stored) shape."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "value": self.value,
            "points": self.points,
            "breaching": self.breaching,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowValue:
        """The inverse of :meth:`to_dict`."""
        value = data.get("value")
        return cls(
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            value=float(value) if value is not None else None,
            points=int(data.get("points", 0)),
            breaching=data.get("breaching"),
        )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation of a rule found: the state, why, and the windows it looked at
    (newest first)."""

    state: AlarmState
    reason: str
    windows: tuple[WindowValue, ...]


@dataclass(frozen=True, slots=True)
class AlarmStatus:
    """A rule and where it stands: the state the control plane (and the guardrails that roll
    deployments back) reads.

    Attributes:
        rule: The rule.
        state: Its current state (INSUFFICIENT_DATA until first evaluated).
        reason: Why it is in that state.
        since: When it entered that state (UTC).
        evaluated_at: The end of the last evaluated window (UTC), or None if never evaluated.
        note: What keeps the rule from getting data now, when something does (a drift score
            of an endpoint whose drift checks are not scheduled); found when the rule is read,
            not stored.
    """

    rule: AlarmRule
    state: AlarmState
    reason: str
    since: datetime
    evaluated_at: datetime | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire shape: the rule's fields with the state beside them."""
        data = self.rule.to_dict()
        data.update(
            state=self.state.value,
            reason=self.reason,
            since=self.since.isoformat(),
            evaluated_at=self.evaluated_at.isoformat() if self.evaluated_at else None,
            note=self.note,
        )
        return data


@dataclass(frozen=True, slots=True)
class Notification:
    """How sending one state change to one sink went: after ``attempts`` tries (a failed
    delivery is tried again, see ``services/alarm_delivery.py``), ``ok`` or the last
    ``error``; ``at``: when the last try was made (UTC; None before the first, or in an entry
    kept before tries had times), which the wait before the next one counts from."""

    sink: str
    ok: bool
    error: str | None = None
    attempts: int = 1
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire (and stored) shape."""
        return {
            "sink": self.sink,
            "ok": self.ok,
            "error": self.error,
            "attempts": self.attempts,
            "at": self.at.isoformat() if self.at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        """The inverse of :meth:`to_dict` (an entry stored before retries: one attempt; before
        tries had times: none)."""
        at = data.get("at")
        return cls(
            str(data["sink"]),
            bool(data["ok"]),
            data.get("error"),
            int(data.get("attempts", 1)),
            datetime.fromisoformat(at) if at else None,
        )


#: The kinds of an alarm's history entries (``AlarmEvent.kind``): a change of its state, and a
#: message about a deployment that watched it and rolled back.
STATE_CHANGE = "state_change"
DEPLOYMENT_ROLLBACK = "deployment_rollback"


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One state change of an alarm, as kept in its history and sent to its sinks.

    Attributes:
        id: The store's number for it (grows with time).
        alarm: The alarm's name.
        endpoint: The alarm's endpoint.
        at: The end of the evaluated window that changed the state (UTC).
        old: The state before.
        new: The state after.
        reason: Why (the windows' values against the threshold, in words).
        windows: The windows evaluated, newest first.
        notifications: How each sink took it (filled in once the sinks were called).
        kind: :data:`STATE_CHANGE`, or :data:`DEPLOYMENT_ROLLBACK`: a message, not a change,
            kept in the history too (so that its failed deliveries are tried again): a
            deployment watching the alarm rolled back (``old`` and ``new`` are the alarm's
            state then; ``reason`` names the deployment and why). A receiver tells a message
            it got twice by its kind and id.
    """

    id: int
    alarm: str
    endpoint: str
    at: datetime
    old: AlarmState
    new: AlarmState
    reason: str
    windows: tuple[WindowValue, ...] = ()
    notifications: tuple[Notification, ...] = ()
    kind: str = STATE_CHANGE

    def to_dict(self) -> dict[str, Any]:
        """The wire shape (a webhook posts this)."""
        return {
            "kind": self.kind,
            "id": self.id,
            "alarm": self.alarm,
            "endpoint": self.endpoint,
            "at": self.at.isoformat(),
            "old_state": self.old.value,
            "new_state": self.new.value,
            "reason": self.reason,
            "windows": [w.to_dict() for w in self.windows],
            "notifications": [n.to_dict() for n in self.notifications],
        }
