"""Carrying out a decision that changes the endpoint, exactly once, across crashes and racing
controllers.

Three compare-and-sets: the decision is kept as :class:`Pending` on the deployment (its
version), the endpoint config is written (the endpoint's current config must still be the one
the decision found), and the deployment records it done (its version again). A writer that
stops anywhere in between leaves the deployment pending, and the next one finishes the same
change: it writes the config if the endpoint is still where the decision found it, adopts the
config if the endpoint already serves exactly those variants (written, not recorded), and
stops the deployment if anyone else changed the endpoint meanwhile.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from modelyard.domain.deployment_decisions import Action, Check, Decision, Pending, Verdict
from modelyard.domain.deployments import Deployment, DeploymentState, StepRecord
from modelyard.domain.endpoints import ConfigChange, EndpointConfig, Variant
from modelyard.errors import Conflict, EndpointNotFound
from modelyard.services.deployment_plan import blend
from modelyard.storage.base import EndpointStore
from modelyard.storage.deployments import DeploymentStore


class Applier:
    """Applies deployments' decisions to their endpoints (see the module docstring)."""

    def __init__(self, store: DeploymentStore, endpoints: EndpointStore) -> None:
        self._store = store
        self._endpoints = endpoints

    def decide(self, deployment: Deployment, decision: Decision, to_step: int) -> Deployment:
        """Keep ``decision`` (start, advance, complete or rollback, leading to step
        ``to_step``) pending on ``deployment``, then carry it out.

        Raises:
            Conflict: the deployment changed since it was read (another writer decided).
        """
        # A stop writes one only while the deployment prepares (it returns to the source).
        writes = decision.action.writes_config or decision.action is Action.STOP
        assert deployment.config is not None and writes
        pending = Pending(decision, to_step, deployment.config)
        kept = self._store.save(
            dataclasses.replace(deployment, pending=pending, updated_at=decision.at)
        )
        return self.finish(kept, decision.at)

    def finish(self, deployment: Deployment, now: datetime) -> Deployment:
        """Carry out ``deployment``'s pending change (see the module docstring).

        Raises:
            Conflict: another writer recorded it (or something else) first.
        """
        pending = deployment.pending
        assert pending is not None
        try:
            current = self._endpoints.get_endpoint(deployment.endpoint).config
            variants, change, parent = self._intended(deployment, pending)
        except EndpointNotFound:
            return self._stop(deployment, now, f"endpoint {deployment.endpoint!r} was deleted")
        if current.number == pending.expected_config and (
            deployment.config is None or made_by(deployment, current)
        ):
            try:
                current = self._endpoints.add_config(
                    deployment.endpoint,
                    variants,
                    change,
                    expected_current=pending.expected_config,
                    parent=parent,
                ).config
            except Conflict:
                current = self._endpoints.get_endpoint(deployment.endpoint).config
        if current.number != pending.expected_config and current.variants == variants:
            return self._done(deployment, pending, current.number, now)
        return self._stop(deployment, now, outside(current))

    def _intended(
        self, d: Deployment, pending: Pending
    ) -> tuple[tuple[Variant, ...], ConfigChange, int | None]:
        """The variants the pending change makes current, why, and the config a later
        rollback of the endpoint returns to."""
        action = pending.decision.action
        source, grandparent = self._endpoints.get_config(d.endpoint, d.source_config)
        if action in (Action.ROLLBACK, Action.STOP):
            return source.variants, ConfigChange.ROLLBACK, grandparent
        if action is Action.COMPLETE:
            return d.target, ConfigChange.UPDATE, d.source_config
        percent = d.plan.steps[pending.step].percent
        mixed = blend(source.variants, d.target, d.served_names, percent)
        change = ConfigChange.UPDATE if action is Action.START else ConfigChange.WEIGHTS
        return mixed, change, d.source_config

    def _done(self, d: Deployment, pending: Pending, config: int, now: datetime) -> Deployment:
        action = pending.decision.action
        changed = dataclasses.replace(
            d, pending=None, config=config, reason=pending.decision.reason, updated_at=now
        )
        start = end = None
        if action in (Action.START, Action.ADVANCE):
            step = d.plan.steps[pending.step]
            changed = dataclasses.replace(changed, step=pending.step, step_started_at=now)
            start = StepRecord(pending.step, step.kind, step.percent, config, now)
            end = (d.step, "passed", now) if action is Action.ADVANCE else None
        else:
            state, outcome = {
                Action.COMPLETE: (DeploymentState.SUCCEEDED, "passed"),
                Action.STOP: (DeploymentState.STOPPED, "stopped"),
            }.get(action, (DeploymentState.ROLLED_BACK, "rolled back"))
            changed = dataclasses.replace(changed, state=state, ended_at=now)
            end = (d.step, outcome, now)
        return self._store.save(changed, decision=pending.decision, start_step=start, end_step=end)

    def _stop(self, d: Deployment, now: datetime, reason: str) -> Deployment:
        actor = d.pending.decision.actor if d.pending else "controller"
        decision = Decision(
            now,
            d.step,
            Action.STOP,
            reason,
            actor,
            checks=(Check("endpoint", Verdict.FAIL, reason),),
        )
        stopped = dataclasses.replace(
            d,
            state=DeploymentState.STOPPED,
            pending=None,
            reason=reason,
            updated_at=now,
            ended_at=now,
        )
        return self._store.save(stopped, decision=decision, end_step=(d.step, "stopped", now))


def made_by(deployment: Deployment, config: EndpointConfig) -> bool:
    """Whether ``config`` is the one ``deployment`` made current (``deployment.config``): its
    number, with the new variants in it under their served names. The number alone is not
    enough: an endpoint deleted and created again counts its configs from 1 again, and the
    deployment would go on with another endpoint's configs."""
    if config.number != deployment.config:
        return False
    for variant in deployment.target:
        found = config.variant(deployment.served_names[variant.name])
        if found is None or (found.model, found.version) != (variant.model, variant.version):
            return False
    return True


def outside(current: EndpointConfig) -> str:
    """Why a deployment stops when its endpoint moved on without it."""
    return (
        f"the endpoint was changed outside the deployment (now at config {current.number}, "
        f"{current.change.value}); the deployment leaves it as it is"
    )
