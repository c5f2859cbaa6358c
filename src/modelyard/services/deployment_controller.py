"""The deployment controller: advances every active deployment by one evaluation per pass.

Each evaluation of a deployment, at each step, runs under a lease of its own
(``deployment:<id>:step:<n>`` at the pass's period), so however many controllers share the
store, each step of each deployment is evaluated by one of them at a time; the changes it
makes are compare-and-sets besides (``deployment_apply.py``), so none is ever applied twice.
Everything a controller knows is in the store: a restarted controller resumes the same step,
with the same window.

One evaluation, in order:

1. a change left pending (its writer stopped half-way) is finished;
2. a deployment whose endpoint was changed by someone else, or deleted (and maybe created
   again), is STOPPED;
3. past the maximum duration it rolls back;
4. the checks: the named alarms, and ``servers`` (prepare: every live server loaded the new
   variants) or the comparison over the step's window (``deployment_analysis.py``);
5. a FAIL rolls back at once, whatever the step's wait (and tells the alarms' sinks);
6. a paused deployment goes no further; a step whose wait has not run out waits;
7. at the end of the wait, INCONCLUSIVE pauses it (saying why) and PASS moves to the next
   step, or makes the new config current alone after the last.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from modelyard.domain.deployment_decisions import Action, Check, Decision, Verdict, worst
from modelyard.domain.deployments import Deployment, DeploymentState, StepKind
from modelyard.domain.endpoints import Variant
from modelyard.domain.monitors import format_duration
from modelyard.domain.servers import EndpointServer
from modelyard.errors import Conflict, EndpointNotFound, ModelyardError
from modelyard.services.deployment_analysis import RowReader, compare, floor_minute, read_sides
from modelyard.services.deployment_apply import Applier, made_by, outside
from modelyard.services.deployment_guards import (
    AlarmReader,
    alarm_checks,
    missing_alarms,
    new_variants,
    notify_rollbacks,
    renamed,
    servers_check,
)
from modelyard.services.deployment_windows import Taint, own_since
from modelyard.services.leased import default_holder, run_leased
from modelyard.storage.base import EndpointStore
from modelyard.storage.deployments import DeploymentStore
from modelyard.storage.leases import LeaseStore

log = logging.getLogger("modelyard.deployments")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_WINDOW = "window"  # the check saying what a step's window leaves out (``_left_out``)


class DeploymentController:
    """Drives active deployments (see the module docstring).

    Args:
        store: The deployments.
        endpoints: The endpoint store (configs are written through it).
        leases: The lease store.
        rows: Reads the metric series rows (``MetricSeriesStore.read``).
        alarms: The alarms' states (``AlarmService``).
        servers: The servers as seen from an endpoint (``ServerService.for_endpoint``).
        clock: Now, timezone-aware UTC.
        period: One evaluation per deployment step per period, across controllers.
        holder: This process's name on leases and decisions (default ``host:pid``).
        lease_ttl: How long a lease outlives a controller that died holding it.
    """

    def __init__(
        self,
        store: DeploymentStore,
        endpoints: EndpointStore,
        leases: LeaseStore,
        *,
        rows: RowReader,
        alarms: AlarmReader,
        servers: Callable[[str], Sequence[EndpointServer]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        period: timedelta = timedelta(seconds=5),
        holder: str | None = None,
        lease_ttl: timedelta = timedelta(minutes=2),
    ) -> None:
        self._store = store
        self._endpoints = endpoints
        self._leases = leases
        self._rows = rows
        self._alarms = alarms
        self._servers = servers
        self._clock = clock
        self._period = period
        self._holder = holder or default_holder()
        self._ttl = lease_ttl
        self._broken: set[int] = set()  # deployments whose evaluation raised (logged once)
        #: The rollbacks of the current pass, told to their alarms' sinks once every
        #: deployment has been decided (a hung receiver holds back no other rollback).
        self._rolled_back: list[tuple[Deployment, Decision]] = []
        self._applier = Applier(store, endpoints)

    def run_once(self, now: datetime | None = None) -> list[Decision]:
        """One evaluation of every active deployment (those another controller evaluates in
        this period are left to it).

        Returns:
            The decisions this call made, in order.
        """
        now = now or self._clock()
        elapsed = (now.astimezone(UTC) - _EPOCH) // self._period
        tick = _EPOCH + elapsed * self._period
        made: list[Decision] = []
        self._rolled_back = []
        try:
            self._decide_all(now, tick, made)
        finally:  # the decisions stand; then their messages, all at once
            rolled_back, self._rolled_back = self._rolled_back, []
            if rolled_back:
                try:
                    notify_rollbacks(self._alarms, rolled_back)
                except ModelyardError as exc:  # the store: logged, the rollbacks stand
                    log.warning("rollback messages not sent: %s", exc.message)
        return made

    def _decide_all(self, now: datetime, tick: datetime, made: list[Decision]) -> None:
        """One evaluation of each active deployment, under its lease; decisions go to
        ``made``."""
        for found in self._store.active():
            lease = f"deployment:{found.id}:step:{found.step}"
            work = functools.partial(self._evaluate, found.id, now)
            try:
                ran = run_leased(
                    self._leases, lease, tick, work, holder=self._holder, ttl=self._ttl
                )
            except ModelyardError as exc:  # one deployment's trouble must not stop the others
                log.warning("deployment %s not evaluated: %s", found.id, exc.message)
                continue
            except Exception:  # nor a defect it meets: logged whole (once), the pass goes on
                if found.id not in self._broken:
                    self._broken.add(found.id)
                    log.exception("deployment %s could not be evaluated", found.id)
                continue
            self._broken.discard(found.id)
            if ran is not None and ran.result is not None:
                made.append(ran.result)
                log.info(
                    "deployment %s of %s: %s: %s",
                    found.id,
                    found.endpoint,
                    ran.result.action.value,
                    ran.result.reason,
                )

    def run_forever(
        self,
        stop: threading.Event,
        poll_s: float = 2.0,
        on_decision: Callable[[Decision], None] | None = None,
    ) -> None:
        """Pass after pass until ``stop`` is set; a pass that fails is logged and retried."""
        failing = False
        while not stop.is_set():
            try:
                for decision in self.run_once():
                    if on_decision is not None:
                        on_decision(decision)
            except ModelyardError as exc:
                if not failing:
                    log.error(
                        "controller pass failed: %s; retrying every %.1f s", exc.message, poll_s
                    )
                failing = True
            except Exception:
                log.exception("controller pass failed; retrying in %.1f s", poll_s)
                failing = True
            else:
                if failing:
                    log.warning("controller passes get through again")
                failing = False
            stop.wait(poll_s)

    # -- one evaluation ----------------------------------------------------------------------

    def _evaluate(self, deployment_id: int, now: datetime) -> Decision | None:
        d = self._store.get(deployment_id)  # read again under the lease
        if not d.state.active:
            return None
        try:
            return self._step(d, now)
        except Conflict:  # another writer changed the deployment first: theirs stands
            return None

    def _step(self, d: Deployment, now: datetime) -> Decision | None:
        if d.pending is not None:
            return self._last(self._applier.finish(d, now))
        try:
            current = self._endpoints.get_endpoint(d.endpoint).config
        except EndpointNotFound:
            return self._stop(d, now, f"endpoint {d.endpoint!r} was deleted")
        if not made_by(d, current):
            return self._stop(d, now, outside(current))
        step = d.current
        # The metric rows are per minute: a step's window starts with the minute it began in
        # (each side's rate in that minute is still its own, whatever the shares were), or
        # later, where a name of its new variants served another model before it; the alarms
        # judged on the new variants read them from that minute too (``own``).
        own, found = own_since(d, self._store, self._endpoints)
        if step.kind is StepKind.PREPARE:
            started, found = d.step_started_at, []
        else:
            started = max(window_start(d), own)
            found = [t for t in found if t.clean_from > window_start(d)]  # what moved it
        window = (started, now)
        deadline = d.started_at + d.plan.max_duration
        if now >= deadline:
            took = format_duration(now - d.started_at)
            reason = (
                f"it ran {took}, past its maximum duration ({format_duration(d.plan.max_duration)})"
            )
            check = Check("max_duration", Verdict.FAIL, reason, {"deadline": deadline.isoformat()})
            return self._rollback(d, now, (check,), window, reason)
        watched = alarm_checks(
            self._alarms,
            d.plan.alarms,
            renamed(d),
            now,
            new_variants(d),
            endpoint=d.endpoint,
            since=own,
        )
        checks = watched + self._watch(d, current.variants, window) + _left_out(found, started)
        verdict = worst(checks)
        if verdict is Verdict.FAIL:
            reason = "; ".join(c.detail for c in checks if c.verdict is Verdict.FAIL)
            return self._rollback(d, now, checks, window, reason)
        if d.state is DeploymentState.PAUSED:
            return None
        gone = missing_alarms(checks)
        if gone:  # at any step: it can no longer be watched as planned, so nothing moves
            return self._pause(d, now, tuple(gone), window)
        if step.kind is StepKind.PREPARE:
            return self._advance(d, now, checks, window) if verdict is Verdict.PASS else None
        if now < max(d.step_started_at, started) + step.hold:  # watched for its whole wait
            return None
        if verdict is Verdict.INCONCLUSIVE:
            return self._pause(d, now, checks, window)
        return self._advance(d, now, checks, window)

    def _watch(
        self, d: Deployment, serving: Sequence[Variant], window: tuple[datetime, datetime]
    ) -> tuple[Check, ...]:
        """The step's own checks: the servers while preparing, else the comparison of the new
        variants with the others ``serving`` over ``window``."""
        step = d.current
        if step.kind is StepKind.PREPARE:
            assert d.config is not None
            return (servers_check(self._servers(d.endpoint), d.config),)
        since, now = window
        rows = self._rows(d.endpoint, variant=None, since=since, until=now) if since < now else []
        # Shadows answer no request: their copies are no side's traffic.
        new_names = {d.served_names[v.name] for v in d.target if not v.is_shadow}
        old_names = {v.name for v in serving if not v.is_shadow} - set(d.served_names.values())
        old, new = read_sides(rows, old_names, new_names)
        if step.percent < 100:
            return compare(new, old, d.plan.analysis)
        # The old config serves nothing now (a bake): the new side is held against what it
        # served before the switch, or a new model failing every request would pass the
        # only watched time of a blue/green deployment.
        switched = self._switched_at(d)
        since = floor_minute(switched - max(step.hold, _MINUTE))
        earlier = self._rows(d.endpoint, variant=None, since=since, until=switched)
        before, _ = read_sides(earlier, old_names, ())
        return compare(new, None, d.plan.analysis, before)

    def _switched_at(self, d: Deployment) -> datetime:
        """When the current step's config became current (a resume restarts the step's wait,
        not its traffic)."""
        found = [r for r in self._store.steps(d.id) if r.index == d.step]
        return found[-1].started_at if found else d.step_started_at

    # -- decisions ---------------------------------------------------------------------------

    def _decision(
        self,
        d: Deployment,
        now: datetime,
        action: Action,
        reason: str,
        checks: tuple[Check, ...] = (),
        window: tuple[datetime, datetime] | None = None,
    ) -> Decision:
        start, end = window if window is not None else (None, None)
        return Decision(now, d.step, action, reason, self._holder, start, end, checks)

    def _advance(
        self,
        d: Deployment,
        now: datetime,
        checks: tuple[Check, ...],
        window: tuple[datetime, datetime],
    ) -> Decision:
        passed = f"step {d.step + 1} ({d.current.label}) passed"
        if d.last_step:
            reason = f"{passed}; the new config serves alone"
            decision = self._decision(d, now, Action.COMPLETE, reason, checks, window)
            return self._last(self._applier.decide(d, decision, d.step))
        following = d.plan.steps[d.step + 1]
        reason = f"{passed}; step {d.step + 2}: {following.label}"
        decision = self._decision(d, now, Action.ADVANCE, reason, checks, window)
        return self._last(self._applier.decide(d, decision, d.step + 1))

    def _rollback(
        self,
        d: Deployment,
        now: datetime,
        checks: tuple[Check, ...],
        window: tuple[datetime, datetime],
        why: str,
    ) -> Decision:
        reason = (
            f"step {d.step + 1} ({d.current.label}) failed: {why}; all traffic back on the "
            f"variants of config {d.source_config}"
        )
        decision = self._decision(d, now, Action.ROLLBACK, reason, checks, window)
        done = self._last(self._applier.decide(d, decision, d.step))
        if done.action is Action.ROLLBACK:
            self._rolled_back.append((d, done))
        return done

    def _pause(
        self,
        d: Deployment,
        now: datetime,
        checks: tuple[Check, ...],
        window: tuple[datetime, datetime],
    ) -> Decision:
        # Each detail once: the two untested comparisons share theirs; a window that starts
        # later than the step says so (what it left out is why it holds so few requests).
        why = "; ".join(
            dict.fromkeys(
                c.detail for c in checks if c.verdict is Verdict.INCONCLUSIVE or c.name == _WINDOW
            )
        )
        reason = (
            f"step {d.step + 1} ({d.current.label}) is INCONCLUSIVE: {why}; paused, not "
            "promoted (resuming runs the step again)"
        )
        decision = self._decision(d, now, Action.PAUSE, reason, checks, window)
        paused = dataclasses.replace(d, state=DeploymentState.PAUSED, reason=reason, updated_at=now)
        return self._last(self._store.save(paused, decision=decision))

    def _stop(self, d: Deployment, now: datetime, reason: str) -> Decision:
        check = Check("endpoint", Verdict.FAIL, reason)
        decision = self._decision(d, now, Action.STOP, reason, (check,))
        stopped = dataclasses.replace(
            d, state=DeploymentState.STOPPED, reason=reason, updated_at=now, ended_at=now
        )
        return self._last(
            self._store.save(stopped, decision=decision, end_step=(d.step, "stopped", now))
        )

    def _last(self, d: Deployment) -> Decision:
        """The decision just recorded for ``d``."""
        return self._store.decisions(d.id, limit=1)[-1]


def _left_out(found: Sequence[Taint], since: datetime) -> tuple[Check, ...]:
    """What the window leaves out, and why, when it starts later than its step's minute."""
    if not found:
        return ()
    said = "; ".join(str(t) for t in found)
    detail = f"the window starts at {since:%H:%M}: {said} (those answers are not this deployment's)"
    values = {t.name: {"served": t.served, "deployment": t.deployment} for t in found}
    return (Check(_WINDOW, Verdict.NOT_APPLICABLE, detail, values),)


def window_start(d: Deployment) -> datetime:
    """Where the window of ``d``'s current step starts: the minute its step began in."""
    return floor_minute(d.step_started_at)
