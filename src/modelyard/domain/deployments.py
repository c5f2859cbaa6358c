"""Guarded deployments: a new endpoint config brought in step by step (canary, linear,
blue/green) while named alarms and a comparison with the old config watch each step.

A deployment is a state machine kept in the store::

    RUNNING ──pause, or a step ends INCONCLUSIVE──▶ PAUSED ──resume──▶ RUNNING
    RUNNING/PAUSED ──an alarm in ALARM, a failed check, max duration, rollback──▶ ROLLED_BACK
    RUNNING ──the last step passes──▶ SUCCEEDED ──rollback──▶ ROLLED_BACK
    RUNNING/PAUSED ──stop, or the endpoint changed by someone else──▶ STOPPED

Its steps (:class:`PlannedStep`) are, in order: ``prepare`` (the new variants join the
endpoint at 0 % and are loaded by every live server before any traffic reaches them), any
number of ``shift`` steps (the new variants get ``percent`` of the traffic for ``hold``), and
``bake`` (100 % for ``hold``, the old variants still loaded at 0 % for an instant switch back).
Then the new config is made current on its own. A ``shadow`` kind (the new variants get copies
of requests, never answering them) fits between ``prepare`` and the first shift once the data
plane can mirror traffic. The JSON form of each record (``to_dict``) is the wire shape.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from modelyard.domain.deployment_decisions import Pending
from modelyard.domain.endpoints import Variant
from modelyard.domain.numbers import shown_value
from modelyard.errors import InvalidInput


class Strategy(StrEnum):
    """How the traffic moves to the new config (SageMaker's deployment guardrails)."""

    ALL_AT_ONCE = "all-at-once"
    CANARY = "canary"
    LINEAR = "linear"
    BLUE_GREEN = "blue-green"

    @classmethod
    def parse(cls, text: str) -> Strategy:
        """Raises InvalidInput naming the strategies."""
        try:
            return cls(text)
        except ValueError:
            raise InvalidInput(
                f"unknown deployment strategy {text!r}; choose one of "
                f"{', '.join(s.value for s in cls)}"
            ) from None


class StepKind(StrEnum):
    """What a step does with the traffic."""

    PREPARE = "prepare"
    SHIFT = "shift"
    BAKE = "bake"


class DeploymentState(StrEnum):
    """Where a deployment stands; RUNNING and PAUSED are active (the controller watches them)."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    SUCCEEDED = "SUCCEEDED"
    ROLLED_BACK = "ROLLED_BACK"
    STOPPED = "STOPPED"

    @property
    def active(self) -> bool:
        return self in (DeploymentState.RUNNING, DeploymentState.PAUSED)


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One step: its kind, the new config's share of the traffic (percent), and how long it
    is held while the checks watch it (``prepare`` holds until every live server loaded)."""

    kind: StepKind
    percent: float
    hold: timedelta

    @property
    def label(self) -> str:
        """``prepare``, ``shift 20%``, ``bake 100%``."""
        return (
            self.kind.value if self.kind is StepKind.PREPARE else f"{self.kind} {self.percent:g}%"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "percent": self.percent,
            "hold_s": self.hold.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlannedStep:
        return cls(
            StepKind(data["kind"]), float(data["percent"]), timedelta(seconds=data["hold_s"])
        )


@dataclass(frozen=True, slots=True)
class Analysis:
    """How a step compares the new variants with the old ones over the same window.

    Attributes:
        min_requests: Fewest requests each side needs in the window; fewer is INCONCLUSIVE.
        alpha: The error-rate test fails when the new variants' error rate is higher with a
            one-sided two-proportion p-value below this.
        max_latency_ratio: The latency check fails when the new p99 is more than this many
            times the old p99 …
        latency_floor_ms: … and more than this many milliseconds above it (sub-millisecond
            models differ by ratios that matter to nobody).
    """

    min_requests: int = 100
    alpha: float = 0.01
    max_latency_ratio: float = 1.5
    latency_floor_ms: float = 5.0

    def __post_init__(self) -> None:
        given = self.min_requests
        if isinstance(given, bool) or not isinstance(given, numbers.Integral):
            # 2.5 and True were taken (True as 1), "100" was a TypeError.
            raise InvalidInput(
                "the minimum number of requests must be a whole number, got "
                f"{type(given).__name__} {shown_value(given)}"
            )
        object.__setattr__(self, "min_requests", int(given))  # numpy's int64 is no JSON
        if not 1 <= self.min_requests <= 10_000_000:
            raise InvalidInput(
                f"the minimum number of requests must be 1 to 10000000, got {self.min_requests}"
            )
        if not 0 < self.alpha < 1:
            raise InvalidInput(f"the significance level must be between 0 and 1, got {self.alpha}")
        if not self.max_latency_ratio >= 1:
            raise InvalidInput(f"the latency ratio must be 1 or more, got {self.max_latency_ratio}")
        if not self.latency_floor_ms >= 0:
            raise InvalidInput(f"the latency floor must be 0 or more, got {self.latency_floor_ms}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_requests": self.min_requests,
            "alpha": self.alpha,
            "max_latency_ratio": self.max_latency_ratio,
            "latency_floor_ms": self.latency_floor_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Analysis:
        return cls(
            int(data["min_requests"]),
            float(data["alpha"]),
            float(data["max_latency_ratio"]),
            float(data["latency_floor_ms"]),
        )


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """A validated plan: the strategy with its options and the steps they make."""

    strategy: Strategy
    steps: tuple[PlannedStep, ...]
    max_duration: timedelta
    alarms: tuple[str, ...] = ()
    analysis: Analysis = Analysis()
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_hold(self) -> timedelta:
        """The waits and the bake together: the shortest the deployment can take."""
        return sum((s.hold for s in self.steps), timedelta())

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.value,
            "steps": [s.to_dict() for s in self.steps],
            "max_duration_s": self.max_duration.total_seconds(),
            "alarms": list(self.alarms),
            "analysis": self.analysis.to_dict(),
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutPlan:
        return cls(
            strategy=Strategy(data["strategy"]),
            steps=tuple(PlannedStep.from_dict(s) for s in data["steps"]),
            max_duration=timedelta(seconds=data["max_duration_s"]),
            alarms=tuple(data.get("alarms", ())),
            analysis=Analysis.from_dict(data["analysis"]),
            options=dict(data.get("options", {})),
        )


@dataclass(frozen=True, slots=True)
class Deployment:
    """One deployment of a new config to an endpoint, as stored.

    Attributes:
        id: The store's number for it.
        endpoint: The endpoint deployed to.
        plan: The validated plan.
        source_config: The endpoint's config when the deployment started (rollback returns to
            its variants).
        target: The new config's variants, named as they will be once it is current alone.
        served_names: Target variant → its name while old and new variants serve together
            (a new variant named like an old one gets another name then).
        state: Where it stands.
        step: The index of the current step in ``plan.steps``.
        config: The endpoint config this deployment made current last (None before its first).
        pending: A change to the endpoint decided but not yet recorded as done (a controller
            that stops half-way leaves it for the next to finish).
        reason: Why it is in its state (the last decision's reason).
        started_at: When it started (UTC).
        updated_at: When it last changed.
        step_started_at: When the current step's window began (a resume starts it again).
        ended_at: When it ended, if it did.
        version: Grows with every change (each change is a compare-and-set on it).
    """

    id: int
    endpoint: str
    plan: RolloutPlan
    source_config: int
    target: tuple[Variant, ...]
    served_names: Mapping[str, str]
    state: DeploymentState
    step: int
    config: int | None
    pending: Pending | None
    reason: str
    started_at: datetime
    updated_at: datetime
    step_started_at: datetime
    ended_at: datetime | None = None
    version: int = 0

    @property
    def current(self) -> PlannedStep:
        """The current step."""
        return self.plan.steps[self.step]

    @property
    def last_step(self) -> bool:
        return self.step == len(self.plan.steps) - 1

    def to_dict(self) -> dict[str, Any]:
        """The wire shape."""
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "state": self.state.value,
            "reason": self.reason,
            "step": self.step,
            "steps": len(self.plan.steps),
            "current_step": self.current.to_dict(),
            "plan": self.plan.to_dict(),
            "source_config": self.source_config,
            "config": self.config,
            "target": [v.to_dict() for v in self.target],
            "served_names": dict(self.served_names),
            "pending": self.pending.to_dict() if self.pending else None,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "step_started_at": self.step_started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step as it happened: the endpoint config it made current, when it started and
    ended, and how (``passed``, ``rolled back``, ``stopped``; None while it runs)."""

    index: int
    kind: StepKind
    percent: float
    config: int
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind.value,
            "percent": self.percent,
            "config": self.config,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "outcome": self.outcome,
        }
