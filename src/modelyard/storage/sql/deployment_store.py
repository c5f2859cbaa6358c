"""``SqlDeploymentStore``: guarded deployments on SQLite or PostgreSQL (the contract:
``storage/deployments.py``).

One active deployment per endpoint: the unique ``active_endpoint`` column holds the endpoint's
name while a deployment is active. On SQLite the write lock makes the check before the insert
enough; on PostgreSQL two concurrent starts may both pass it, and the second insert hits the
key (the unit of work's ``AlreadyExists``), which becomes the same Conflict naming the winner.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from modelyard.domain.deployment_decisions import Action, Check, Decision, Pending
from modelyard.domain.deployments import (
    Deployment,
    DeploymentState,
    RolloutPlan,
    StepKind,
    StepRecord,
)
from modelyard.domain.endpoints import Variant
from modelyard.errors import AlreadyExists, Conflict, NotFound
from modelyard.storage.deployments import DeploymentStore
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import deployment_decisions, deployment_steps, deployments
from modelyard.storage.sql.timestamps import aware


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _deployment(row: Row[Any]) -> Deployment:
    return Deployment(
        id=int(row.id),
        endpoint=row.endpoint,
        plan=RolloutPlan.from_dict(row.plan),
        source_config=int(row.source_config),
        target=tuple(Variant.from_dict(v) for v in row.target),
        served_names=dict(row.served_names),
        state=DeploymentState(row.state),
        step=int(row.step),
        config=row.config,
        pending=Pending.from_dict(row.pending) if row.pending else None,
        reason=row.reason,
        started_at=aware(row.started_at),
        updated_at=aware(row.updated_at),
        step_started_at=aware(row.step_started_at),
        ended_at=aware(row.ended_at) if row.ended_at is not None else None,
        version=int(row.version),
    )


def _changeable(d: Deployment) -> dict[str, Any]:
    return {
        "active_endpoint": d.endpoint if d.state.active else None,
        "state": d.state.value,
        "step": d.step,
        "config": d.config,
        "pending": d.pending.to_dict() if d.pending else None,
        "reason": d.reason,
        "updated_at": _utc(d.updated_at),
        "step_started_at": _utc(d.step_started_at),
        "ended_at": _utc(d.ended_at),
    }


def _step(row: Row[Any]) -> StepRecord:
    return StepRecord(
        index=int(row.step),
        kind=StepKind(row.kind),
        percent=float(row.percent),
        config=int(row.config),
        started_at=aware(row.started_at),
        ended_at=aware(row.ended_at) if row.ended_at is not None else None,
        outcome=row.outcome,
    )


def _decision(row: Row[Any]) -> Decision:
    return Decision(
        at=aware(row.at),
        step=int(row.step),
        action=Action(row.action),
        reason=row.reason,
        actor=row.actor,
        window_start=aware(row.window_start) if row.window_start is not None else None,
        window_end=aware(row.window_end) if row.window_end is not None else None,
        checks=tuple(Check.from_dict(c) for c in row.checks),
        id=int(row.id),
        deployment=int(row.deployment_id),
    )


def _running_one(conn: Connection, endpoint: str) -> Conflict | None:
    row = conn.execute(
        sa.select(deployments).where(deployments.c.active_endpoint == endpoint)
    ).first()
    if row is None:
        return None
    found = _deployment(row)
    return Conflict(
        f"endpoint {endpoint!r} has deployment {found.id} {found.state.value.lower()} "
        f"({found.plan.strategy.value}, step {found.step + 1} of {len(found.plan.steps)}: "
        f"{found.current.label}); wait for it to end, or stop or roll it back first"
    )


def end_with_endpoint(conn: Connection, endpoint: str, at: datetime) -> None:
    """Stop ``endpoint``'s active deployment, if any, because the endpoint is being deleted
    (in the deleting transaction: no controller can write the deployment in between; its next
    save finds the version moved and reads the deployment STOPPED)."""
    row = conn.execute(
        sa.select(deployments).where(deployments.c.active_endpoint == endpoint)
    ).first()
    if row is None:
        return
    d = _deployment(row)
    reason = f"the endpoint was deleted at step {d.step + 1} ({d.current.label})"
    ended = replace(
        d,
        state=DeploymentState.STOPPED,
        pending=None,
        reason=reason,
        updated_at=at,
        ended_at=at,
    )
    conn.execute(
        deployments.update()
        .where(deployments.c.id == d.id)
        .values(version=deployments.c.version + 1, **_changeable(ended))
    )
    conn.execute(
        deployment_steps.update()
        .where(deployment_steps.c.deployment_id == d.id, deployment_steps.c.ended_at.is_(None))
        .values(ended_at=_utc(at), outcome="stopped")
    )
    decision = Decision(at, d.step, Action.STOP, reason, "user")
    conn.execute(deployment_decisions.insert().values(**_decision_row(d.id, decision)))


class SqlDeploymentStore(DeploymentStore):
    """A :class:`DeploymentStore` on an engine whose schema is already migrated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, deployment: Deployment) -> Deployment:
        d = deployment
        try:
            with transaction(self._engine, write=True) as conn:
                running = _running_one(conn, d.endpoint)
                if running is not None:
                    raise running
                new_id = conn.execute(
                    deployments.insert()
                    .values(
                        endpoint=d.endpoint,
                        plan=d.plan.to_dict(),
                        source_config=d.source_config,
                        target=[v.to_dict() for v in d.target],
                        served_names=dict(d.served_names),
                        started_at=_utc(d.started_at),
                        version=1,
                        **_changeable(d),
                    )
                    .returning(deployments.c.id)
                ).scalar_one()
                return self._get(conn, int(new_id))
        except AlreadyExists:
            # PostgreSQL: another start passed the check at the same time and inserted first.
            with transaction(self._engine, write=False) as conn:
                running = _running_one(conn, d.endpoint)
            raise running or Conflict(
                f"endpoint {d.endpoint!r} had a deployment started at the same time"
            ) from None

    def _get(self, conn: Connection, deployment_id: int) -> Deployment:
        row = conn.execute(sa.select(deployments).where(deployments.c.id == deployment_id)).first()
        if row is None:
            raise NotFound(f"no deployment {deployment_id}")
        return _deployment(row)

    def get(self, deployment_id: int) -> Deployment:
        with transaction(self._engine, write=False) as conn:
            return self._get(conn, deployment_id)

    def latest(self, endpoint: str) -> Deployment | None:
        found = self.list_deployments(endpoint, limit=1)
        return found[0] if found else None

    def list_deployments(self, endpoint: str | None = None, limit: int = 100) -> list[Deployment]:
        query = sa.select(deployments).order_by(deployments.c.id.desc()).limit(limit)
        if endpoint is not None:
            query = query.where(deployments.c.endpoint == endpoint)
        with transaction(self._engine, write=False) as conn:
            return [_deployment(r) for r in conn.execute(query)]

    def active(self) -> list[Deployment]:
        query = (
            sa.select(deployments)
            .where(deployments.c.active_endpoint.is_not(None))
            .order_by(deployments.c.id)
        )
        with transaction(self._engine, write=False) as conn:
            return [_deployment(r) for r in conn.execute(query)]

    def save(
        self,
        deployment: Deployment,
        *,
        decision: Decision | None = None,
        start_step: StepRecord | None = None,
        end_step: tuple[int, str, datetime] | None = None,
    ) -> Deployment:
        d = deployment
        with transaction(self._engine, write=True) as conn:
            changed = conn.execute(
                deployments.update()
                .where(deployments.c.id == d.id, deployments.c.version == d.version)
                .values(version=deployments.c.version + 1, **_changeable(d))
            ).rowcount
            if not changed:
                now = self._get(conn, d.id)  # NotFound when it is gone
                raise Conflict(
                    f"deployment {d.id} of {d.endpoint!r} changed meanwhile (now "
                    f"{now.state.value}, step {now.step + 1}); look again"
                )
            if end_step is not None:
                index, outcome, at = end_step
                conn.execute(
                    deployment_steps.update()
                    .where(
                        deployment_steps.c.deployment_id == d.id,
                        deployment_steps.c.step == index,
                        deployment_steps.c.ended_at.is_(None),
                    )
                    .values(ended_at=_utc(at), outcome=outcome)
                )
            if start_step is not None:
                self._start_step(conn, d, start_step)
            if decision is not None:
                conn.execute(deployment_decisions.insert().values(**_decision_row(d.id, decision)))
            return self._get(conn, d.id)

    @staticmethod
    def _start_step(conn: Connection, d: Deployment, step: StepRecord) -> None:
        try:
            conn.execute(
                deployment_steps.insert().values(
                    deployment_id=d.id,
                    step=step.index,
                    kind=step.kind.value,
                    percent=step.percent,
                    config=step.config,
                    started_at=_utc(step.started_at),
                )
            )
        except sa.exc.IntegrityError:
            raise Conflict(f"step {step.index + 1} of deployment {d.id} started already") from None

    def discard(self, deployment_id: int) -> None:
        with transaction(self._engine, write=True) as conn:
            for table in (deployment_decisions, deployment_steps):
                conn.execute(table.delete().where(table.c.deployment_id == deployment_id))
            conn.execute(deployments.delete().where(deployments.c.id == deployment_id))

    def steps(self, deployment_id: int) -> list[StepRecord]:
        query = (
            sa.select(deployment_steps)
            .where(deployment_steps.c.deployment_id == deployment_id)
            .order_by(deployment_steps.c.step)
        )
        with transaction(self._engine, write=False) as conn:
            return [_step(r) for r in conn.execute(query)]

    def decisions(self, deployment_id: int, limit: int = 1000) -> list[Decision]:
        query = (
            sa.select(deployment_decisions)
            .where(deployment_decisions.c.deployment_id == deployment_id)
            .order_by(deployment_decisions.c.id.desc())
            .limit(limit)
        )
        with transaction(self._engine, write=False) as conn:
            return [_decision(r) for r in reversed(conn.execute(query).all())]


def _decision_row(deployment_id: int, decision: Decision) -> dict[str, Any]:
    return {
        "deployment_id": deployment_id,
        "at": _utc(decision.at),
        "step": decision.step,
        "action": decision.action.value,
        "reason": decision.reason,
        "actor": decision.actor,
        "window_start": _utc(decision.window_start),
        "window_end": _utc(decision.window_end),
        "checks": [c.to_dict() for c in decision.checks],
    }
