"""A controller that restarts mid-deployment resumes the same step: with a new controller (new
connections, nothing kept in memory) the step keeps its window and is applied once; and a
controller that stopped between writing the endpoint's config and recording it leaves the change
pending, which the next controller finishes without writing the config again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from modelyard.domain.deployment_decisions import Action
from modelyard.domain.deployments import DeploymentState
from modelyard.errors import StorageUnavailable
from modelyard.services.deployment_controller import DeploymentController
from modelyard.storage.sql.deployment_store import SqlDeploymentStore
from modelyard.storage.sql.endpoint_store import SqlEndpointStore
from tests.services.deployment_parts import ENDPOINT, STEP, Parts, open_parts
from tests.services.fixtures import parts_fixture

MIN = timedelta(minutes=1)


parts = parts_fixture(open_parts)


def _linear(parts: Parts) -> None:
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="linear", step_size=50,
                        wait=timedelta(minutes=5), bake=timedelta(0), min_requests=10)  # fmt: skip


def _traffic(parts: Parts, minutes: int) -> None:
    for i in range(minutes):
        minute = parts.clock.now + i * MIN
        parts.serve("main.next", minute, 100)
        parts.serve("main", minute, 100)


def test_a_restarted_controller_resumes_the_same_step(parts: Parts) -> None:
    _linear(parts)
    first = parts.controller("first")
    assert [d.action for d in first.run_once(parts.clock.advance(STEP))] == [Action.ADVANCE]
    step_started = parts.service.get(ENDPOINT).step_started_at
    _traffic(parts, 6)
    assert first.run_once(parts.clock.advance(2 * MIN)) == []
    del first  # the controller process ends; a new one starts on its own connections
    again = open_parts(parts.url, parts.clock, seed=False)
    try:
        second = again.controller("second")
        assert second.run_once(parts.clock.advance(2 * MIN)) == [], "the wait goes on"
        d = again.service.get(ENDPOINT)
        assert (d.step, d.step_started_at) == (1, step_started), "the same step, same window"
        (done,) = second.run_once(parts.clock.advance(MIN + STEP))
        assert done.action is Action.COMPLETE and done.actor == "second"
        assert done.window_start == step_started.replace(second=0, microsecond=0)
    finally:
        again.close()
    assert [c.change.value for c in parts.endpoints.history(ENDPOINT)] == [
        "create", "update", "weights", "update",
    ]  # fmt: skip
    assert [s.index for s in parts.service.steps(parts.service.get(ENDPOINT))] == [0, 1]


class CrashAfterWrite(SqlDeploymentStore):
    """The real store, except that recording an advance fails once: the controller "dies"
    after it wrote the endpoint's config and before it recorded that."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self.crashed = False

    def save(self, deployment: Any, **kwargs: Any) -> Any:
        decision = kwargs.get("decision")
        if not self.crashed and decision is not None and decision.action is Action.ADVANCE:
            self.crashed = True
            raise StorageUnavailable("the controller died here")
        return super().save(deployment, **kwargs)


def test_a_change_left_pending_is_finished_once_by_the_next_controller(parts: Parts) -> None:
    _linear(parts)
    crashing = CrashAfterWrite(parts.engine)
    assert parts.controller("dies", store=crashing).run_once(parts.clock.advance(STEP)) == []
    assert crashing.crashed
    left = parts.service.get(ENDPOINT)
    assert left.pending is not None and left.pending.decision.action is Action.ADVANCE
    assert left.step == 0, "the advance is decided, not recorded"
    written = parts.endpoint_store.get_endpoint(ENDPOINT).config
    assert written.number == 3 and parts.weights() == {"main": 0.5, "main.next": 0.5}
    (finished,) = parts.controller("next").run_once(parts.clock.advance(STEP))
    assert finished.action is Action.ADVANCE and finished.actor == "dies", "the same decision"
    d = parts.service.get(ENDPOINT)
    assert (d.step, d.config, d.pending, d.state) == (1, 3, None, DeploymentState.RUNNING)
    assert [c.number for c in parts.endpoints.history(ENDPOINT)] == [1, 2, 3], "written once"
    assert [s.index for s in parts.service.steps(d)] == [0, 1]


def test_a_stop_by_hand_finishes_a_change_left_pending_first(parts: Parts) -> None:
    """A stop once left the pending advance on the stopped deployment for good (no controller
    looks at a stopped one) and said the endpoint kept config 2, while it served config 3."""
    _linear(parts)
    crashing = CrashAfterWrite(parts.engine)
    assert parts.controller("dies", store=crashing).run_once(parts.clock.advance(STEP)) == []
    assert parts.service.get(ENDPOINT).pending is not None
    stopped = parts.service.stop(ENDPOINT)
    assert stopped.state is DeploymentState.STOPPED and stopped.pending is None
    assert (stopped.step, stopped.config) == (1, 3)
    assert stopped.reason.endswith("the endpoint keeps config 3")
    assert parts.endpoint_store.get_endpoint(ENDPOINT).config.number == 3, "written once"
    steps = parts.service.steps(stopped)
    assert [(s.index, s.outcome) for s in steps] == [(0, "passed"), (1, "stopped")]
    actions = [x.action for x in parts.service.decisions(stopped)]
    assert actions == [Action.START, Action.ADVANCE, Action.STOP]


class CrashBeforeWrite(SqlEndpointStore):
    """The real store, except that writing a step's config fails once: the controller "dies"
    after it kept its decision pending and before the endpoint's config was written."""

    crashed = False

    def add_config(self, name: str, variants: Any, change: Any, **kwargs: Any) -> Any:
        if not self.crashed and change.value == "weights":
            self.crashed = True
            raise StorageUnavailable("the controller died here")
        return super().add_config(name, variants, change, **kwargs)


def test_a_change_left_pending_is_not_written_into_an_endpoint_created_again(
    parts: Parts,
) -> None:
    """The endpoint was deleted and created again meanwhile, up to the config number the
    pending change expects: that number once sufficed, and the change was written there."""
    _linear(parts)
    dies = DeploymentController(
        parts.deployment_store, CrashBeforeWrite(parts.engine), parts.leases,
        rows=parts.metric_store.read, alarms=parts.alarms, servers=parts.servers.for_endpoint,
        clock=parts.clock, period=STEP, holder="dies",
    )  # fmt: skip
    assert dies.run_once(parts.clock.advance(STEP)) == []
    left = parts.service.get(ENDPOINT)
    assert left.pending is not None and left.pending.expected_config == 2
    parts.endpoints.delete(ENDPOINT)
    parts.endpoints.create(ENDPOINT, {"x": "churn:1"})
    parts.endpoints.update(ENDPOINT, {"y": "churn:3"})
    assert parts.controller("next").run_once(parts.clock.advance(STEP)) == []
    assert parts.weights() == {"y": 1.0}
    assert [c.change.value for c in parts.endpoints.history(ENDPOINT)] == ["create", "update"]
    d = parts.service.get(ENDPOINT)
    assert (d.state, d.pending) == (DeploymentState.STOPPED, None)
