"""The deployment service: start a guarded deployment of a new config (``endpoints update``
with a strategy), read deployments with their steps and decisions, and steer them (pause,
resume, stop, roll back). The controller (``deployment_controller.py``) moves them on.

Starting checks the whole plan before anything moves, and then the new models (loaded and
warmed here, as ``endpoints update`` does): a bad plan, an alarm that does not exist (or is in
ALARM already), a second deployment while one is active, a model that cannot load: each is
refused with the reason, and nothing is written. Then the new variants join the endpoint at 0 %
(config ``prepare``), and the controller takes over.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from modelyard.domain.alarms import AlarmState
from modelyard.domain.counts import limit_of
from modelyard.domain.deployment_decisions import Action, Decision, Pending
from modelyard.domain.deployments import (
    Analysis,
    Deployment,
    DeploymentState,
    StepKind,
    StepRecord,
    Strategy,
)
from modelyard.domain.endpoints import Endpoint, Variant
from modelyard.domain.references import validate_name
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.services.deployment_apply import Applier
from modelyard.services.deployment_guards import AlarmReader, judged_on_new
from modelyard.services.deployment_plan import describe, plan_rollout, served_names
from modelyard.storage.base import EndpointStore
from modelyard.storage.deployments import DeploymentStore

#: Who manual decisions are logged as.
USER = "user"
#: How often a manual change is tried when a controller changes the deployment at the same time.
_ATTEMPTS = 3
#: The largest id a deployment can have (the database's 64-bit integers).
_MAX_ID = 2**63 - 1
T = TypeVar("T")


class BuildVariants(Protocol):
    """Resolves, loads and checks a new config's variants without writing anything
    (``EndpointService``'s build step): the arguments of ``EndpointService.update``."""

    def __call__(
        self,
        variants: Mapping[str, str],
        weights: Mapping[str, float] | None,
        batching: Mapping[str, Any] | None,
        predictors: Mapping[str, Any] | None,
        capture: Mapping[str, Any] | None = None,
        shadows: Mapping[str, float] | None = None,
        alongside: Sequence[Variant] = (),
        *,
        current: Mapping[str, float] | None = None,
        current_shadows: Mapping[str, float] | None = None,
        endpoint: str | None = None,
    ) -> tuple[Variant, ...]: ...


@dataclass(frozen=True, slots=True)
class Change:
    """What a start or a rollback did: the endpoint as it is now, the deployment (None for
    an all-at-once update, a rollback of the endpoint's last change, or nothing to change),
    and whether the endpoint changed (False: the update asked for the config it serves)."""

    endpoint: Endpoint
    deployment: Deployment | None
    changed: bool = True


class DeploymentService:
    """Guarded deployments (see the module docstring).

    Args:
        store: The deployments.
        endpoints: The endpoint store.
        build: Builds a new config's variants (loads and checks the models).
        alarms: The alarms' states (``AlarmService``).
        update: ``EndpointService.update_if_changed`` (an all-at-once update, and whether
            it wrote a config).
        rollback: ``EndpointService.rollback`` (the endpoint's last change undone; with
            ``expected``, only while that config is current).
        promote: ``EndpointService.promote`` (a shadow made the sole production variant).
        clock: Now, timezone-aware UTC.
    """

    def __init__(
        self,
        store: DeploymentStore,
        endpoints: EndpointStore,
        *,
        build: BuildVariants,
        alarms: AlarmReader,
        update: Callable[..., tuple[Endpoint, bool]],
        rollback: Callable[..., Endpoint],
        promote: Callable[[str, str | None], Endpoint],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._endpoints = endpoints
        self._build = build
        self._alarms = alarms
        self._update = update
        self._rollback = rollback
        self._promote = promote
        self._clock = clock
        self._applier = Applier(store, endpoints)

    # -- starting ----------------------------------------------------------------------------

    def start(
        self,
        endpoint: str,
        variants: Mapping[str, str],
        weights: Mapping[str, float] | None = None,
        batching: Mapping[str, Any] | None = None,
        predictors: Mapping[str, Any] | None = None,
        capture: Mapping[str, Any] | None = None,
        shadows: Mapping[str, float] | None = None,
        *,
        strategy: Strategy | str,
        canary_size: float | None = None,
        step_size: float | None = None,
        wait: timedelta | str | None = None,
        bake: timedelta | str | None = None,
        max_duration: timedelta | str | None = None,
        alarms: Sequence[str] = (),
        min_requests: int | None = None,
    ) -> Change:
        """Deploy a new config of ``endpoint`` (its variants as for ``EndpointService.update``)
        with ``strategy``; ``all-at-once`` is a plain update (it takes no plan options). The
        new config's shadows take no part in the shifts: they join at the first step with
        their sampling, and the old config's shadows stay until the old config retires (one
        the new config keeps, of the same name and model version, is replaced at once). A
        new config identical to the current one changes nothing, whatever the strategy: no
        deployment starts, no config is written, and the change says so (``changed`` False).

        Raises:
            InvalidInput: a bad plan (see ``plan_rollout``), plan options with all-at-once, or
                what building the variants refuses.
            NotFound: an alarm that does not exist. EndpointNotFound.
            Conflict: an alarm already in ALARM (not one on a variant the new config
                replaces: its state is the old models'); a deployment of the endpoint is active (the
                message names it); the endpoint changed while the models loaded.
            Whatever loading a model raises. In every case nothing is written.
        """
        validate_name(endpoint, "endpoint name")
        strategy = strategy if isinstance(strategy, Strategy) else Strategy.parse(strategy)
        options = (canary_size, step_size, wait, bake, max_duration, min_requests)
        if strategy is Strategy.ALL_AT_ONCE:
            if any(o is not None for o in options) or alarms:
                raise InvalidInput(
                    "an all-at-once update takes no canary, step, wait, bake, maximum "
                    "duration, alarms or minimum of requests: it has no steps to watch"
                )
            self._refuse_active(endpoint)
            updated, changed = self._update(
                endpoint,
                variants,
                weights=weights,
                batching=batching,
                predictors=predictors,
                capture=capture,
                shadows=shadows,
            )
            return Change(updated, None, changed)
        analysis = Analysis() if min_requests is None else Analysis(min_requests=min_requests)
        plan = plan_rollout(
            strategy,
            canary_size=canary_size,
            step_size=step_size,
            wait=wait,
            bake=bake,
            max_duration=max_duration,
            alarms=alarms,
            analysis=analysis,
        )
        live = self._endpoints.get_endpoint(endpoint)
        current = live.config
        # An alarm on a variant the new config replaces is judged on the new one meanwhile.
        replaced = {v.name for v in current.variants} & set(variants)
        self._check_alarms(plan.alarms, endpoint, replaced)
        self._refuse_active(endpoint)
        # The old config's production variants answer until the rollout ends, and the new
        # shadows are sent copies of their requests from the first step.
        serving = [v for v in current.variants if not v.is_shadow]
        target = self._build(
            variants,
            weights,
            batching,
            predictors,
            capture,
            shadows,
            alongside=serving,
            current={v.name: v.weight for v in serving},
            current_shadows={v.name: v.shadow for v in current.variants if v.shadow is not None},
            endpoint=endpoint,
        )
        if target == current.variants:  # the same model compared with itself, for nothing
            return Change(live, None, changed=False)
        names = served_names(current.variants, target)
        renamed = {name for name, served in names.items() if served != name}
        if renamed != replaced:  # a shadow kept under its name is the old one: its own state
            self._check_alarms(plan.alarms, endpoint, renamed)
        now = self._clock()
        decision = Decision(now, 0, Action.START, f"started: {describe(plan)}", USER)
        created = self._store.create(
            Deployment(
                id=0,
                endpoint=endpoint,
                plan=plan,
                source_config=current.number,
                target=target,
                served_names=names,
                state=DeploymentState.RUNNING,
                step=0,
                config=None,
                pending=Pending(decision, 0, current.number),
                reason="starting",
                started_at=now,
                updated_at=now,
                step_started_at=now,
            )
        )
        try:
            started = self._applier.finish(created, now)
        except Conflict:  # a controller saw it pending and finished it first: the same change
            started = self._store.get(created.id)
        if started.state is not DeploymentState.RUNNING:  # the endpoint moved meanwhile
            self._store.discard(started.id)
            raise Conflict(f"endpoint {endpoint!r} changed while the new models loaded; retry")
        return Change(self._endpoints.get_endpoint(endpoint), started)

    def promote(self, endpoint: str, variant: str | None = None) -> Endpoint:
        """``EndpointService.promote``, refused while a deployment of ``endpoint`` is active
        (the deployment would stop on the change; end it first).

        Raises:
            Conflict: a deployment of the endpoint is active (the message names it), or the
                endpoint changed meanwhile. What ``EndpointService.promote`` raises.
        """
        validate_name(endpoint, "endpoint name")
        self._refuse_active(endpoint)
        return self._promote(endpoint, variant)

    def _check_alarms(self, names: Sequence[str], endpoint: str, replaced: Set[str]) -> None:
        for name in names:
            try:
                status = self._alarms.state(name)
            except NotFound:
                raise NotFound(f"alarm {name!r} does not exist; create it first") from None
            # Its state is (partly) the old models' when the new variants are judged on their
            # own while they serve (``deployment_guards.alarm_checks``).
            if status.state is AlarmState.ALARM and not judged_on_new(
                status.rule, replaced, endpoint
            ):
                raise Conflict(
                    f"alarm {name!r} is in ALARM now ({status.reason}); a deployment it "
                    "watches would roll back at once"
                )

    def _refuse_active(self, endpoint: str) -> None:
        found = self._store.latest(endpoint)
        if found is not None and found.state.active:
            raise Conflict(
                f"endpoint {endpoint!r} has deployment {found.id} {found.state.value.lower()} "
                f"({found.plan.strategy.value}, step {found.step + 1} of "
                f"{len(found.plan.steps)}: {found.current.label}); wait for it to end, or "
                "stop or roll it back first"
            )

    # -- reading -----------------------------------------------------------------------------

    def list_deployments(self, endpoint: str | None = None, limit: int = 100) -> list[Deployment]:
        """Deployments (of ``endpoint``, when given), newest first, at most ``limit``.

        Raises:
            InvalidInput: ``limit`` is not from 1 to ``MAX_LIMIT``; InvalidName: ``endpoint``
                is not a name; EndpointNotFound: no endpoint has it and no deployment of one
                that had it is left (a deleted endpoint's stay listed).
        """
        limit = limit_of(limit)
        if endpoint is None:
            return self._store.list_deployments(None, limit)
        validate_name(endpoint, "endpoint name")
        found = self._store.list_deployments(endpoint, limit)
        if not found:
            self._endpoints.get_endpoint(endpoint)  # raises EndpointNotFound for a stranger
        return found

    def get(self, endpoint: str, deployment_id: int | None = None) -> Deployment:
        """The latest deployment of ``endpoint`` (or its deployment ``deployment_id``).

        Raises:
            InvalidName; InvalidInput (a deployment id that is not a whole number);
            EndpointNotFound (no endpoint has the name, and no deployment of one that had it
            is left); NotFound.
        """
        validate_name(endpoint, "endpoint name")
        if deployment_id is not None:
            if isinstance(deployment_id, bool) or not isinstance(deployment_id, numbers.Integral):
                raise InvalidInput(
                    "a deployment is named by its number, got "
                    f"{type(deployment_id).__name__} {deployment_id!r}"
                )
            if not 1 <= deployment_id <= _MAX_ID:  # no row has it; the database cannot take it
                raise NotFound(f"no deployment {deployment_id}")
            found = self._store.get(deployment_id)
            if found.endpoint != endpoint:
                raise NotFound(f"deployment {deployment_id} is not of endpoint {endpoint!r}")
            return found
        latest = self._store.latest(endpoint)
        if latest is None:
            self._endpoints.get_endpoint(endpoint)  # EndpointNotFound for a stranger (a typo)
            raise NotFound(f"endpoint {endpoint!r} has no deployment")
        return latest

    def steps(self, deployment: Deployment) -> list[StepRecord]:
        """Its steps as they happened."""
        return self._store.steps(deployment.id)

    def decisions(self, deployment: Deployment, limit: int = 1000) -> list[Decision]:
        """Its decision log, oldest first: the latest ``limit`` decisions.

        Raises:
            InvalidInput: ``limit`` is not from 1 to ``MAX_LIMIT``.
        """
        return self._store.decisions(deployment.id, limit_of(limit))

    # -- steering ----------------------------------------------------------------------------

    def pause(self, endpoint: str) -> tuple[Deployment, bool]:
        """Hold the active deployment of ``endpoint`` at its step (its alarms and comparison
        still roll it back). Returns it and whether it changed (False: paused already).

        Raises:
            NotFound; Conflict when it has no active deployment (naming its last).
        """
        return self._steer(endpoint, self._pause)

    def _pause(self, d: Deployment, now: datetime) -> tuple[Deployment, bool]:
        if d.state is DeploymentState.PAUSED:
            return d, False
        reason = f"paused by hand at step {d.step + 1} ({d.current.label})"
        paused = dataclasses.replace(d, state=DeploymentState.PAUSED, reason=reason, updated_at=now)
        return self._save(paused, now, Action.PAUSE, reason), True

    def resume(self, endpoint: str) -> tuple[Deployment, bool]:
        """Resume a paused deployment: its current step starts again (its wait and its
        window). Returns it and whether it changed (False: running already). Raises what
        :meth:`pause` raises."""
        return self._steer(endpoint, self._resume)

    def _resume(self, d: Deployment, now: datetime) -> tuple[Deployment, bool]:
        if d.state is DeploymentState.RUNNING:
            return d, False
        reason = f"resumed by hand: step {d.step + 1} ({d.current.label}) starts again"
        running = dataclasses.replace(
            d, state=DeploymentState.RUNNING, reason=reason, updated_at=now, step_started_at=now
        )
        return self._save(running, now, Action.RESUME, reason), True

    def stop(self, endpoint: str) -> Deployment:
        """End the active deployment where it is: the endpoint keeps its current config (old
        and new variants in the current step's shares); nothing moves any more. While it
        prepares (no traffic moved yet) there is no mix to keep: the endpoint returns to the
        variants it had before the deployment (a config of change ``rollback``), so no new
        variant is left in it at 0 %. Raises what :meth:`pause` raises."""
        return self._steer(endpoint, self._stop)

    def _stop(self, d: Deployment, now: datetime) -> Deployment:
        if d.current.kind is StepKind.PREPARE:
            reason = (
                f"stopped by hand at step {d.step + 1} ({d.current.label}), before any traffic "
                f"moved; the endpoint is back on the variants of config {d.source_config}"
            )
            return self._applier.decide(d, Decision(now, d.step, Action.STOP, reason, USER), d.step)
        reason = (
            f"stopped by hand at step {d.step + 1} ({d.current.label}); the endpoint keeps "
            f"config {d.config}"
        )
        stopped = dataclasses.replace(
            d, state=DeploymentState.STOPPED, reason=reason, updated_at=now, ended_at=now
        )
        return self._save(stopped, now, Action.STOP, reason, end=(d.step, "stopped", now))

    def rollback(self, endpoint: str) -> Change:
        """Put all traffic back on the config that was current before: the active
        deployment's old config (the deployment ends ROLLED_BACK), or, with none active, the
        endpoint's previous config (``EndpointService.rollback``); when that undoes the
        completion of the latest deployment, it ends ROLLED_BACK. A deployment found active
        that ends another way here (the endpoint was changed by hand since, so it stops; or
        its pending last step completes it) was not running any more: it is recorded so, and
        the endpoint's previous config is returned to, as the controller's pass would have
        left it to.

        Raises:
            InvalidInput: nothing to roll back to (the endpoint has no previous config).
            EndpointNotFound; Conflict: the deployment kept changing under this call.
        """
        validate_name(endpoint, "endpoint name")
        d = self._store.latest(endpoint)
        if d is None or not d.state.active:
            return self.rollback_endpoint(endpoint)
        for attempt in range(_ATTEMPTS):
            now = self._clock()
            try:
                if d.pending is not None:  # a controller is half-way through: finish it
                    d = self._applier.finish(d, now)
                if d.state.active:
                    reason = f"rolled back by hand at step {d.step + 1} ({d.current.label})"
                    decision = Decision(now, d.step, Action.ROLLBACK, reason, USER)
                    d = self._applier.decide(d, decision, d.step)
                if d.state is not DeploymentState.ROLLED_BACK:
                    return Change(self._rollback(endpoint), d)
                return Change(self._endpoints.get_endpoint(endpoint), d)
            except Conflict:  # a controller decided at the same moment: look again
                if attempt == _ATTEMPTS - 1:
                    raise
                d = self._store.get(d.id)
        raise AssertionError("unreachable")

    def rollback_endpoint(self, endpoint: str) -> Change:
        """The endpoint's last change undone (``EndpointService.rollback``: ``endpoints
        rollback``); when that is the completion of its latest deployment (the endpoint still
        serves the config it finished with), the deployment ends ROLLED_BACK, saying so, as
        with :meth:`rollback`. During a deployment it is a change by hand (the config before
        the deployment comes back, and the deployment stops on it); :meth:`rollback` rolls
        the deployment back instead.

        Raises:
            InvalidInput: nothing to roll back to. InvalidName; EndpointNotFound; Conflict.
        """
        validate_name(endpoint, "endpoint name")
        d = self._store.latest(endpoint)
        if d is not None and d.state is DeploymentState.SUCCEEDED:
            return self._undo_success(endpoint, d)
        return Change(self._rollback(endpoint), None)

    def _undo_success(self, endpoint: str, d: Deployment) -> Change:
        """Roll back the endpoint's last change; when that is ``d``'s completion (the endpoint
        still serves the config it finished with), ``d`` ends ROLLED_BACK, saying so, rather
        than SUCCEEDED with its new config gone."""
        current = self._endpoints.get_endpoint(endpoint).config
        # Its completion's parent is its source config. A number and variants alone are not
        # enough: an endpoint deleted and created again counts its configs from 1 again.
        _, parent = self._endpoints.get_config(endpoint, current.number)
        made = (current.number, current.variants, parent) == (d.config, d.target, d.source_config)
        if not made:
            return Change(self._rollback(endpoint), None)  # a later change is what is undone
        # The completed config's parent, the source config; a rollback made meanwhile (two
        # at once, both judging the completion current) makes this one a Conflict.
        back = self._rollback(endpoint, expected=current.number)
        now = self._clock()
        reason = (
            "rolled back by hand after it succeeded; all traffic back on the variants of "
            f"config {d.source_config}"
        )
        decision = Decision(now, d.step, Action.ROLLBACK, reason, USER)
        undone = dataclasses.replace(
            d, state=DeploymentState.ROLLED_BACK, reason=reason, updated_at=now, ended_at=now
        )
        return Change(back, self._store.save(undone, decision=decision))

    def _steer(self, endpoint: str, change: Callable[[Deployment, datetime], T]) -> T:
        """``change`` the active deployment, again on a fresh read if a controller changed it
        at the same moment. A change a writer left pending (it stopped half-way) is finished
        first, so that none is left behind a stopped deployment, never to be finished."""
        for attempt in range(_ATTEMPTS):
            d = self._active(endpoint)
            now = self._clock()
            try:
                if d.pending is not None:
                    d = self._applier.finish(d, now)
                if d.state.active:
                    return change(d, now)
            except Conflict:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            self._active(endpoint)  # finishing that change ended it: raises, saying how
        raise AssertionError("unreachable")

    def _active(self, endpoint: str) -> Deployment:
        d = self.get(endpoint)
        if not d.state.active:
            raise Conflict(
                f"endpoint {endpoint!r} has no active deployment (its last, {d.id}, "
                f"{d.state.value}: {d.reason})"
            )
        return d

    def _save(
        self,
        d: Deployment,
        now: datetime,
        action: Action,
        reason: str,
        end: tuple[int, str, datetime] | None = None,
    ) -> Deployment:
        decision = Decision(now, d.step, action, reason, USER)
        return self._store.save(d, decision=decision, end_step=end)
