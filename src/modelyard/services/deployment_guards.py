"""The guards of a deployment besides the comparison: its named alarms, the servers that must
have loaded the new variants before they get traffic, and the notice a rollback sends to the
alarms' sinks.

An alarm in ALARM fails its check (the deployment rolls back); INSUFFICIENT_DATA is counted as
nothing either way (the comparison's minimum of requests is what keeps a step without data
from passing); an alarm deleted meanwhile makes its check INCONCLUSIVE.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from modelyard.domain.alarms import AlarmEvent, AlarmState, AlarmStatus
from modelyard.domain.deployment_decisions import Check, Decision, Verdict
from modelyard.domain.deployments import Deployment
from modelyard.domain.servers import EndpointServer
from modelyard.errors import ModelyardError, NotFound
from modelyard.services.sinks import open_sink

log = logging.getLogger("modelyard.deployments")


class AlarmReader(Protocol):
    """The alarms' states (``AlarmService``)."""

    def state(self, name: str) -> AlarmStatus:
        """Raises NotFound."""
        ...


def alarm_checks(alarms: AlarmReader, names: Sequence[str]) -> tuple[Check, ...]:
    """One check per named alarm, from its current state."""
    out = []
    for name in names:
        label = f"alarm {name}"
        try:
            status = alarms.state(name)
        except NotFound:
            out.append(Check(label, Verdict.INCONCLUSIVE, f"alarm {name!r} no longer exists"))
            continue
        values = {
            "state": status.state.value,
            "since": status.since.isoformat(),
            "evaluated_at": status.evaluated_at.isoformat() if status.evaluated_at else None,
            "condition": status.rule.condition,
        }
        if status.state is AlarmState.ALARM:
            detail = f"alarm {name} is in ALARM: {status.reason}"
            out.append(Check(label, Verdict.FAIL, detail, values))
        elif status.state is AlarmState.OK:
            out.append(Check(label, Verdict.PASS, f"alarm {name} is OK", values))
        else:
            detail = f"alarm {name} has insufficient data; not counted"
            out.append(Check(label, Verdict.NOT_APPLICABLE, detail, values))
    return tuple(out)


def servers_check(servers: Sequence[EndpointServer], config: int) -> Check:
    """PASS once every live server serves endpoint config ``config`` (so has loaded its
    models); FAIL when a live server could not load it; INCONCLUSIVE while some are behind.
    With no live server it passes: a server that starts later loads the whole config before
    it serves anything."""
    live = [s for s in servers if s.server.live]
    behind = [s for s in live if s.config != config]
    failed = [s for s in behind if s.failure is not None]
    values = {
        "config": config,
        "live": len(live),
        "ready": len(live) - len(behind),
        "behind": {s.server.status.name: s.config for s in behind},
    }
    if failed:
        first = failed[0]
        detail = (
            f"server {first.server.status.name} could not load config {config}: {first.failure}"
        )
        return Check("servers", Verdict.FAIL, detail, values)
    if behind:
        names = ", ".join(f"{s.server.status.name} (config {s.config})" for s in behind)
        ready = len(live) - len(behind)
        detail = f"{ready} of {len(live)} live servers loaded config {config}; waiting for {names}"
        return Check("servers", Verdict.INCONCLUSIVE, detail, values)
    if not live:
        detail = f"no live server; one that starts loads config {config} before it serves"
        return Check("servers", Verdict.PASS, detail, values)
    return Check(
        "servers", Verdict.PASS, f"all {len(live)} live servers loaded config {config}", values
    )


def notify_rollback(alarms: AlarmReader, deployment: Deployment, decision: Decision) -> None:
    """Tell the sinks of every alarm the deployment watches that it rolled back, and why (the
    alarm's own state change went to them already). A sink that fails is logged; nothing
    stops for it."""
    for name in deployment.plan.alarms:
        try:
            status = alarms.state(name)
        except NotFound:
            continue
        event = AlarmEvent(
            id=decision.id,
            alarm=name,
            endpoint=status.rule.endpoint,
            at=decision.at,
            old=status.state,
            new=status.state,
            reason=f"deployment {deployment.id} of endpoint {deployment.endpoint} rolled "
            f"back: {decision.reason}",
        )
        for spec in status.rule.sinks:
            try:
                open_sink(spec).notify(event, status.rule)
            except ModelyardError as exc:
                log.warning("alarm %s: sink %s failed: %s", name, spec.label, exc.message)
            except Exception:  # a sink's bug must not stop the controller
                log.exception("alarm %s: sink %s failed", name, spec.label)
