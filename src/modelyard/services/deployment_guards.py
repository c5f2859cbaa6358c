"""The guards of a deployment besides the comparison: its named alarms, the servers that must
have loaded the new variants before they get traffic, and the notice a rollback sends to the
alarms' sinks.

An alarm in ALARM fails its check (the deployment rolls back); INSUFFICIENT_DATA is counted as
nothing either way (the comparison's minimum of requests is what keeps a step without data
from passing); an alarm deleted meanwhile makes its check INCONCLUSIVE, and the controller
pauses the deployment at once (it can no longer be watched as planned). Deleting an alarm that
an active deployment watches is refused (:func:`watching`).

An alarm on one variant that the new config replaces is judged on the new variant while both
serve (``main`` is then ``main.next``): the alarm's own state is the old models', whose errors
are no reason to roll the new ones back, and which never holds the new ones' errors. A new
variant is judged only on the minutes from which its name holds the deployment's models
(``deployment_windows.own_since``): its windows before count as windows without data.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from modelyard.domain.alarms import (
    DEPLOYMENT_ROLLBACK,
    AlarmEvent,
    AlarmRule,
    AlarmState,
    AlarmStatus,
    Evaluation,
    Statistic,
)
from modelyard.domain.deployment_decisions import Check, Decision, Verdict
from modelyard.domain.deployments import Deployment
from modelyard.domain.metrics import reads_alike_on_a_share
from modelyard.domain.servers import EndpointServer
from modelyard.errors import NotFound


class ActiveDeployments(Protocol):
    """The deployments still running or paused (``DeploymentStore.active``)."""

    def active(self) -> list[Deployment]: ...


class AlarmReader(Protocol):
    """The alarms' states (``AlarmService``)."""

    def state(self, name: str) -> AlarmStatus:
        """Raises NotFound."""
        ...

    def judge_as(
        self, rule: AlarmRule, variant: str, now: datetime, since: datetime | None = None
    ) -> Evaluation:
        """``rule`` judged now on ``variant`` instead of its own, nothing recorded, nothing
        before ``since`` read."""
        ...

    def announce(self, events: Sequence[AlarmEvent]) -> list[AlarmEvent]:
        """Send messages about alarms to their sinks, kept for retries."""
        ...


def renamed(deployment: Deployment) -> dict[str, str]:
    """The new config's variants that serve under another name while the deployment runs
    (``main`` → ``main.next``): an alarm on one of them is judged on the new one."""
    return {name: served for name, served in deployment.served_names.items() if served != name}


def judged_on_new(rule: AlarmRule, replaced: Collection[str], endpoint: str) -> bool:
    """Whether a deployment of ``endpoint`` judges ``rule`` on its new variants rather than by
    the rule's own state: the rule watches ``endpoint`` (an alarm on another endpoint, such as
    a downstream service's, holds none of the new variants: its own state is what it says),
    namely a variant the new config replaces, or the whole endpoint, over a series that reads
    alike on a share of the traffic and a statistic that does not add the minutes up (a new
    variant gets a share: a count, or a sum over minutes, reads low on it, and a
    ``requests < N`` rule would fire on a 10% canary alone). Such a rule's state is then
    (partly) the old models', which does not refuse the start either."""
    if rule.endpoint != endpoint:
        return False
    if not reads_alike_on_a_share(rule.metric) or rule.statistic is Statistic.SUM:
        return False
    return rule.variant is None or rule.variant in replaced


def new_variants(deployment: Deployment) -> list[str]:
    """The names the new config's production variants serve under while the deployment runs
    (shadows answer nobody)."""
    return [deployment.served_names[v.name] for v in deployment.target if not v.is_shadow]


def alarm_checks(
    alarms: AlarmReader,
    names: Sequence[str],
    renames: Mapping[str, str],
    now: datetime,
    new: Sequence[str] = (),
    *,
    endpoint: str,
    since: datetime | None = None,
) -> tuple[Check, ...]:
    """One check per named alarm, from its current state, or for an alarm of ``endpoint`` (the
    deployment's) on a variant in ``renames`` from its judgement on the new variant now, or
    for an alarm on the whole ``endpoint`` whose series reads alike on a share of the traffic
    (a rate, a latency: see :func:`~modelyard.domain.metrics.reads_alike_on_a_share`) from its
    judgement on each new variant in ``new`` too (:func:`_endpoint_alarm`); an alarm that no
    longer exists is INCONCLUSIVE with ``{"missing": True}`` (:func:`missing_alarms`). A new
    variant is judged on its rows from ``since`` on (the minute its name holds the
    deployment's models from), its windows before it counting as windows without data."""
    out = []
    for name in names:
        label = f"alarm {name}"
        try:
            status = alarms.state(name)
        except NotFound:
            detail = (
                f"alarm {name!r} no longer exists (create it again, or stop or roll back the "
                "deployment)"
            )
            out.append(Check(label, Verdict.INCONCLUSIVE, detail, {"missing": True}))
            continue
        values: dict[str, Any] = {
            "state": status.state.value,
            "since": status.since.isoformat(),
            "evaluated_at": status.evaluated_at.isoformat() if status.evaluated_at else None,
            "condition": status.rule.condition,
        }
        state, reason, said = status.state, status.reason, f"alarm {name}"
        variant = status.rule.variant
        on_new = judged_on_new(status.rule, renames, endpoint)
        if on_new and variant is not None and variant in renames:
            served = renames[variant]
            found = alarms.judge_as(status.rule, served, now, since)
            state, reason = found.state, found.reason
            said = (
                f"alarm {name}, judged on variant {served} (the new {variant!r} while the "
                f"deployment runs){_from(found, since)},"
            )
            values = {"state": state.value, "variant": served, "own_state": status.state.value,
                      "condition": status.rule.condition}  # fmt: skip
        elif on_new and variant is None and new:
            out.append(_endpoint_alarm(alarms, status, new, now, values, since))
            continue
        if state is AlarmState.ALARM:
            detail = f"{said} is in ALARM: {reason}"
            out.append(Check(label, Verdict.FAIL, detail, values))
        elif state is AlarmState.OK:
            out.append(Check(label, Verdict.PASS, f"{said} is OK", values))
        else:
            detail = f"{said} has insufficient data; not counted"
            out.append(Check(label, Verdict.NOT_APPLICABLE, detail, values))
    return tuple(out)


def _endpoint_alarm(
    alarms: AlarmReader,
    status: AlarmStatus,
    new: Sequence[str],
    now: datetime,
    values: dict[str, Any],
    since: datetime | None,
) -> Check:
    """The check of an alarm on the whole endpoint, on a series that reads alike on a share
    of the traffic, while the new variants ``new`` serve beside the old: judged on each new
    variant too, so that the old models' errors never roll the new ones back (the endpoint's
    ALARM they cause clears once the new variants alone are OK), and a new variant's own
    breach counts even while the old models' traffic keeps the endpoint's value under the
    threshold (a canary at 10% failing half its requests). The endpoint in ALARM while a new
    variant has too little data to judge (while preparing, it serves nothing) counts for
    nothing, saying so: it neither blames the new models nor passes them, and the step's
    comparison, which needs its minimum of requests to the new variants, still has to. Each new
    variant is judged from ``since`` on, as in :func:`alarm_checks`."""
    name, rule = status.rule.name, status.rule
    judged = {v: alarms.judge_as(rule, v, now, since) for v in new}
    values = {**values, "new_variants": {v: e.state.value for v, e in judged.items()}}
    label = f"alarm {name}"
    for variant, found in judged.items():
        if found.state is AlarmState.ALARM:
            detail = (
                f"alarm {name}, judged on the new variant {variant}{_from(found, since)}, "
                "is in ALARM"
            )
            return Check(label, Verdict.FAIL, f"{detail}: {found.reason}", values)
    if status.state is not AlarmState.ALARM:
        if status.state is AlarmState.OK:
            return Check(label, Verdict.PASS, f"alarm {name} is OK", values)
        detail = f"alarm {name} has insufficient data; not counted"
        return Check(label, Verdict.NOT_APPLICABLE, detail, values)
    short = [v for v, e in judged.items() if e.state is not AlarmState.OK]
    if short:
        cut = _from(judged[short[0]], since)  # one rule, one bound: alike for each
        detail = (
            f"alarm {name} is in ALARM on the whole endpoint ({status.reason}), and the new "
            f"variant {', '.join(short)} has too little data{cut} to tell whether it is the "
            "old models'; not counted"
        )
        return Check(label, Verdict.NOT_APPLICABLE, detail, values)
    detail = (
        f"alarm {name} is in ALARM on the whole endpoint ({status.reason}) but OK judged on the "
        f"new variant {', '.join(new)}: the old models', not counted against the new"
    )
    return Check(label, Verdict.PASS, detail, values)


def _from(found: Evaluation, since: datetime | None) -> str:
    """`` from HH:MM on`` when ``since`` cut into the windows ``found`` judged (those minutes
    counted as no data), else nothing."""
    if since is None or not found.windows or found.windows[-1].start >= since:
        return ""
    return f" from {since:%H:%M} on"


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


def notify_rollbacks(
    alarms: AlarmReader, rolled_back: Sequence[tuple[Deployment, Decision]]
) -> None:
    """Tell the sinks of every alarm each deployment watches that it rolled back, and why.
    The controller calls it once its pass has decided every deployment, so a receiver that
    hangs holds back no other rollback; in a scheduler pass this comes before the alarms' own
    state changes that caused them (``Scheduler.run_once`` sends those after the
    deployments); each body's ``kind`` tells them apart. Every message is kept in its alarm's
    history before any is sent, all are sent at once, and a sink that fails is tried again on
    later passes, as for a state change (``announce``)."""
    messages = []
    for deployment, decision in rolled_back:
        for name in deployment.plan.alarms:
            try:
                status = alarms.state(name)
            except NotFound:  # deleted meanwhile
                continue
            messages.append(
                AlarmEvent(
                    id=decision.id,  # the history's, once kept
                    alarm=name,
                    endpoint=status.rule.endpoint,
                    at=decision.at,
                    old=status.state,
                    new=status.state,
                    reason=f"deployment {deployment.id} of endpoint {deployment.endpoint} "
                    f"rolled back: {decision.reason}",
                    kind=DEPLOYMENT_ROLLBACK,
                )
            )
    alarms.announce(messages)


def missing_alarms(checks: Sequence[Check]) -> list[Check]:
    """The checks of named alarms that no longer exist: the deployment can no longer be
    watched as planned."""
    return [c for c in checks if c.values.get("missing") is True]


def watching(deployments: ActiveDeployments, alarm: str) -> list[str]:
    """The active deployments that watch ``alarm``, described (``deployment 3 of endpoint
    'churn-api'``): what ``AlarmService.delete`` refuses to leave unwatched."""
    return [
        f"deployment {d.id} of endpoint {d.endpoint!r}"
        for d in deployments.active()
        if alarm in d.plan.alarms
    ]
