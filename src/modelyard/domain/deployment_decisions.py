"""The decision log of a deployment: what was decided (advance, pause, roll back …), why, over
which window, and every check behind it with its values.

A decision that changes the endpoint is first kept as :class:`Pending` on the deployment (the
change is decided, the endpoint not yet written), so a controller that stops half-way leaves
enough for the next one to finish the same change, never a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """What one check found. INCONCLUSIVE (too little data) is never a pass."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NOT_APPLICABLE = "n/a"


class Action(StrEnum):
    """What a decision did to the deployment."""

    START = "start"
    ADVANCE = "advance"
    COMPLETE = "complete"
    PAUSE = "pause"
    RESUME = "resume"
    ROLLBACK = "rollback"
    STOP = "stop"

    @property
    def writes_config(self) -> bool:
        """Whether it always makes a new endpoint config current (a STOP makes one only while
        the deployment prepares: it returns the endpoint to its source config)."""
        return self in (Action.START, Action.ADVANCE, Action.COMPLETE, Action.ROLLBACK)


@dataclass(frozen=True, slots=True)
class Check:
    """One check of a decision: its name (``error_rate``, ``latency_p99``, ``requests``,
    ``alarm p99-high``, ``servers``, ``max_duration``), verdict, one line saying why, and the
    values it looked at."""

    name: str
    verdict: Verdict
    detail: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "detail": self.detail,
            "values": dict(self.values),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        return cls(
            str(data["name"]),
            Verdict(data["verdict"]),
            str(data["detail"]),
            dict(data.get("values") or {}),
        )


def worst(checks: tuple[Check, ...]) -> Verdict:
    """FAIL if any check failed, else INCONCLUSIVE if any was, else PASS (checks that do not
    apply count for nothing; none at all is INCONCLUSIVE: no evidence is no pass)."""
    verdicts = {c.verdict for c in checks} - {Verdict.NOT_APPLICABLE}
    for verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE):
        if verdict in verdicts:
            return verdict
    return Verdict.PASS if verdicts else Verdict.INCONCLUSIVE


@dataclass(frozen=True, slots=True)
class Decision:
    """One entry of the decision log.

    Attributes:
        at: When it was decided (UTC).
        step: The step it was taken at.
        action: What it did.
        reason: Why, in one line.
        actor: Who decided (``host:pid`` of a controller, or ``user``).
        window_start: The start of the window its checks read (None: no window).
        window_end: Its end.
        checks: The checks behind it, with their values.
        id: The store's number for it (0 until stored).
        deployment: The deployment's id (0 until stored).
    """

    at: datetime
    step: int
    action: Action
    reason: str
    actor: str
    window_start: datetime | None = None
    window_end: datetime | None = None
    checks: tuple[Check, ...] = ()
    id: int = 0
    deployment: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment": self.deployment,
            "at": self.at.isoformat(),
            "step": self.step,
            "action": self.action.value,
            "reason": self.reason,
            "actor": self.actor,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            at=datetime.fromisoformat(data["at"]),
            step=int(data["step"]),
            action=Action(data["action"]),
            reason=str(data["reason"]),
            actor=str(data["actor"]),
            window_start=_time(data.get("window_start")),
            window_end=_time(data.get("window_end")),
            checks=tuple(Check.from_dict(c) for c in data.get("checks", ())),
            id=int(data.get("id", 0)),
            deployment=int(data.get("deployment", 0)),
        )


@dataclass(frozen=True, slots=True)
class Pending:
    """A change decided but not yet done: ``decision`` (which says what), the step it leads
    to, and the endpoint config that must still be current for it to be written (if the
    endpoint moved on otherwise, someone else changed it)."""

    decision: Decision
    step: int
    expected_config: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.to_dict(),
            "step": self.step,
            "expected_config": self.expected_config,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pending:
        return cls(
            Decision.from_dict(data["decision"]), int(data["step"]), int(data["expected_config"])
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
