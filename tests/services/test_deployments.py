"""Guarded deployments over real stores (SQLite and PostgreSQL), driven by a controller whose
clock the test sets: a linear ramp that completes step by step, a step without traffic that
ends INCONCLUSIVE and pauses, rollbacks on a failed comparison and on an alarm (with the
decision logged and the alarm's webhook told), errors of the old fleet that never blame the
new one, and the servers that must load the new variants before they get traffic."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from modelyard.domain import Batching, ConfigChange, Variant
from modelyard.domain.alarms import AlarmState, SinkSpec
from modelyard.domain.deployment_decisions import Action, Verdict
from modelyard.domain.deployments import DeploymentState, StepKind
from modelyard.errors import Conflict, EndpointNotFound, InvalidInput, InvalidName, NotFound
from modelyard.services.alarm_delivery import RETRY_AFTER
from modelyard.services.monitors import MonitorService
from modelyard.services.scheduler import Scheduler
from tests.services.deployment_parts import (
    ENDPOINT,
    STEP,
    T0,
    Parts,
    open_parts,
    tick,
    traffic,
)
from tests.services.fixtures import parts_fixture
from tests.services.webhook_server import webhook_receiver

MIN = timedelta(minutes=1)


parts = parts_fixture(open_parts)


def test_a_linear_ramp_completes_step_by_step(parts: Parts) -> None:
    started = parts.service.start(
        ENDPOINT, {"main": "churn:2"}, strategy="linear", step_size=25,
        wait=timedelta(minutes=5), bake=timedelta(minutes=10), min_requests=50,
    )  # fmt: skip
    d = started.deployment
    assert d is not None and d.state is DeploymentState.RUNNING and d.step == 0
    assert [s.label for s in d.plan.steps] == [
        "prepare", "shift 25%", "shift 50%", "shift 75%", "bake 100%",
    ]  # fmt: skip
    # Prepare: the new variant joins at 0 %, under another name than the old ``main``.
    assert parts.weights() == {"main": 1.0, "main.next": 0.0}
    assert started.endpoint.config.change is ConfigChange.UPDATE
    parts.report(config=1, pid=1)
    assert tick(parts) == [], "a live server has not loaded the new variant yet"
    parts.report(config=d.config or 0, pid=1)
    assert tick(parts) == [Action.ADVANCE]
    assert parts.weights() == {"main": 0.75, "main.next": 0.25}
    for share, following in ((0.25, 0.5), (0.5, 0.75), (0.75, 1.0)):
        traffic(parts, 6, share)
        assert tick(parts, 4 * MIN) == [], "the step's wait is not over"
        assert tick(parts, MIN) == [Action.ADVANCE]
        assert parts.weights() == {"main": round(1 - following, 6), "main.next": following}
    # The bake: 100 % on the new variant, the old one still loaded at weight 0.
    traffic(parts, 11, 1.0)
    assert tick(parts, 9 * MIN) == []
    assert tick(parts, MIN + STEP) == [Action.COMPLETE]
    assert parts.weights() == {"main": 1.0}
    assert [v.version for v in parts.current_variants()] == [2]
    done = parts.service.get(ENDPOINT)
    assert done.state is DeploymentState.SUCCEEDED and done.ended_at is not None
    history = parts.endpoints.history(ENDPOINT)
    assert [c.change.value for c in history] == [
        "create", "update", "weights", "weights", "weights", "weights", "update",
    ]  # fmt: skip
    steps = parts.service.steps(done)
    assert [(s.index, s.kind, s.percent, s.outcome) for s in steps] == [
        (0, StepKind.PREPARE, 0.0, "passed"),
        (1, StepKind.SHIFT, 25.0, "passed"),
        (2, StepKind.SHIFT, 50.0, "passed"),
        (3, StepKind.SHIFT, 75.0, "passed"),
        (4, StepKind.BAKE, 100.0, "passed"),
    ]
    assert [s.config for s in steps] == [c.number for c in history[1:6]]
    decisions = parts.service.decisions(done)
    assert [x.action for x in decisions] == [Action.START] + [Action.ADVANCE] * 4 + [
        Action.COMPLETE
    ]
    shift = decisions[2]
    checks = {c.name: c for c in shift.checks}
    assert checks["requests"].values["new_requests"] >= 500
    assert checks["error_rate"].verdict is Verdict.PASS
    assert checks["latency_p99"].verdict is Verdict.PASS
    assert shift.window_start is not None and shift.window_end is not None
    assert shift.window_end - shift.window_start >= timedelta(minutes=5)
    # After it completed, a rollback goes back to the old config, and the deployment says so.
    back = parts.service.rollback(ENDPOINT)
    assert [v.version for v in back.endpoint.config.variants] == [1]
    assert back.deployment is not None and back.deployment.state is DeploymentState.ROLLED_BACK


def test_a_step_without_traffic_to_the_new_variant_is_inconclusive_and_pauses(
    parts: Parts,
) -> None:
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                            wait=timedelta(minutes=5), min_requests=100).deployment  # fmt: skip
    assert d is not None
    assert tick(parts) == [Action.ADVANCE], "no live server: nothing to wait for"
    canary = parts.weights()
    assert canary == {"main": 0.9, "main.next": 0.1}
    traffic(parts, 6, 0.0)  # the old variant serves; the canary gets nothing
    assert tick(parts, 5 * MIN) == [Action.PAUSE]
    paused = parts.service.get(ENDPOINT)
    assert paused.state is DeploymentState.PAUSED and paused.step == 1
    assert "INCONCLUSIVE" in paused.reason and "0 request(s) reached the new variants" in (
        paused.reason
    )
    # Each untested check says which it is: the reason said "not tested: too few requests"
    # twice over, naming neither.
    assert paused.reason.endswith(
        "100 needed; the error rate and the p99 latency are not tested: too few requests; "
        "paused, not promoted (resuming runs the step again)"
    )
    assert parts.weights() == canary, "an inconclusive step promotes nothing"
    decision = parts.service.decisions(paused)[-1]
    assert decision.action is Action.PAUSE
    requests = {c.name: c for c in decision.checks}["requests"]
    assert requests.verdict is Verdict.INCONCLUSIVE and requests.values["new_requests"] == 0
    for _ in range(3):
        assert tick(parts, MIN) == [], "a paused deployment goes no further"
    assert parts.weights() == canary
    resumed, changed = parts.service.resume(ENDPOINT)
    assert changed and resumed.state is DeploymentState.RUNNING
    assert resumed.step_started_at == parts.clock.now, "the step's window starts again"
    traffic(parts, 6, 0.1)
    assert tick(parts, 5 * MIN + STEP) == [Action.ADVANCE]
    assert parts.service.get(ENDPOINT).current.kind is StepKind.BAKE


def test_a_failed_comparison_rolls_back_before_the_wait_ends(parts: Parts) -> None:
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=20,
                        wait=timedelta(minutes=10), min_requests=50)  # fmt: skip
    assert tick(parts) == [Action.ADVANCE]
    traffic(parts, 2, 0.2, errors_new=30, errors_old=1)
    assert tick(parts, MIN) == [Action.ROLLBACK], "a failure does not wait for the step's end"
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.ROLLED_BACK and "error rate higher" in d.reason
    current = parts.endpoint_store.get_endpoint(ENDPOINT).config
    assert current.change is ConfigChange.ROLLBACK
    assert [(v.name, v.version, v.weight) for v in current.variants] == [("main", 1, 1.0)]
    decision = parts.service.decisions(d)[-1]
    errors = {c.name: c for c in decision.checks}["error_rate"]
    assert errors.verdict is Verdict.FAIL
    assert errors.values["new_errors"] == 60 and errors.values["old_errors"] == 2
    assert errors.values["p_value"] < 0.01
    began = parts.service.steps(d)[-1].started_at
    assert decision.window_start == began.replace(second=0), "from the minute it began in"
    assert decision.window_end == parts.clock.now
    assert parts.service.steps(d)[-1].outcome == "rolled back"
    assert tick(parts, MIN) == [], "a rolled back deployment is left alone"


def test_a_slower_new_variant_fails_the_latency_check(parts: Parts) -> None:
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=50,
                        wait=timedelta(minutes=5), min_requests=50)  # fmt: skip
    tick(parts)
    traffic(parts, 1, 0.5, latency_new=0.2)
    assert tick(parts, MIN) == [Action.ROLLBACK]
    decision = parts.service.decisions(parts.service.get(ENDPOINT))[-1]
    latency = {c.name: c for c in decision.checks}["latency_p99"]
    assert latency.verdict is Verdict.FAIL and latency.values["ratio"] > 1.5


def test_errors_of_the_old_fleet_never_blame_the_new_one(parts: Parts) -> None:
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                        wait=timedelta(minutes=5), bake=timedelta(0), min_requests=20)  # fmt: skip
    tick(parts)
    traffic(parts, 6, 0.1, errors_old=180)
    assert tick(parts, 5 * MIN) == [Action.COMPLETE]
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.SUCCEEDED
    checks = {c.name: c for c in parts.service.decisions(d)[-1].checks}
    assert checks["error_rate"].verdict is Verdict.PASS
    assert checks["error_rate"].values["old_rate"] == pytest.approx(0.5)


def _blue_green_watched(parts: Parts, url: str, also: str | None = None) -> None:
    """A blue/green deployment, switched and baking, watching alarm ``errors-high`` (the new
    variant's error rate above 20%, told to the webhook at ``url``), and alarm ``also``
    (the same rule under another name) when given."""
    names = ["errors-high"] if also is None else ["errors-high", also]
    for name in names:
        parts.alarms.create(
            name, endpoint=ENDPOINT, metric="error_rate", comparison=">",
            threshold=0.2, window=MIN, sinks=[SinkSpec("webhook", url)],
        )  # fmt: skip
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="blue-green",
                        bake=timedelta(minutes=10), alarms=names)  # fmt: skip
    assert tick(parts) == [Action.ADVANCE]


def test_the_rollback_messages_of_all_watched_alarms_go_out_together(parts: Parts) -> None:
    """Kept first, then sent at once: a receiver that hangs costs the controller one
    timeout, not one per alarm. The receiver answers only requests that come in pairs."""
    with webhook_receiver() as receiver:
        _blue_green_watched(parts, receiver.url, also="errors-high-too")
        minute = parts.clock.now.replace(second=0, microsecond=0)
        parts.serve("main.next", minute, 100, errors=60)
        parts.clock.advance(MIN)
        parts.alarms.evaluate(parts.clock.now)
        receiver.answer_in_groups(2)
        assert tick(parts) == [Action.ROLLBACK]
    for name in ("errors-high", "errors-high-too"):
        message = parts.alarms.history(name)[0]
        assert message.kind == "deployment_rollback"
        assert message.notifications[-1].ok, (name, message.notifications)


def test_an_alarm_in_alarm_rolls_back_and_tells_its_webhook(parts: Parts) -> None:
    with webhook_receiver() as receiver:
        _blue_green_watched(parts, receiver.url)
        assert parts.weights() == {"main": 0.0, "main.next": 1.0}
        minute = parts.clock.now.replace(second=0, microsecond=0)
        parts.serve("main.next", minute, 100, errors=60)
        parts.clock.advance(MIN)
        (event,) = parts.alarms.evaluate(parts.clock.now)
        assert event.new is AlarmState.ALARM
        before = len(receiver.received())
        assert tick(parts) == [Action.ROLLBACK]
        d = parts.service.get(ENDPOINT)
        assert d.state is DeploymentState.ROLLED_BACK
        assert "alarm errors-high, judged on the new variant main.next, is in ALARM" in d.reason
        assert parts.weights() == {"main": 1.0}
        alarm = {c.name: c for c in parts.service.decisions(d)[-1].checks}["alarm errors-high"]
        assert alarm.verdict is Verdict.FAIL and alarm.values["state"] == "ALARM"
        told = receiver.received()[before:]
        assert len(told) == 1 and told[0]["alarm"] == "errors-high"
        # Told apart from the alarm's own change, whose id may equal this decision's.
        assert [b["kind"] for b in receiver.received()] == ["state_change", "deployment_rollback"]
        assert f"deployment {d.id} of endpoint {ENDPOINT} rolled back" in told[0]["reason"]


def test_a_rollback_message_a_webhook_missed_is_kept_and_sent_again(parts: Parts) -> None:
    with webhook_receiver() as receiver:
        _blue_green_watched(parts, receiver.url)
        minute = parts.clock.now.replace(second=0, microsecond=0)
        parts.serve("main.next", minute, 100, errors=60)
        parts.clock.advance(MIN)
        parts.alarms.evaluate(parts.clock.now)
        receiver.status = 503  # down when the deployment rolls back
        assert tick(parts) == [Action.ROLLBACK]
        message, change = parts.alarms.history("errors-high")[:2]
        assert (message.kind, change.kind) == ("deployment_rollback", "state_change")
        webhook = message.notifications[-1]
        assert (webhook.ok, webhook.attempts) == (False, 1) and "503" in (webhook.error or "")
        missed = receiver.received()[-1]
        receiver.status = 200
        parts.clock.advance(RETRY_AFTER)
        parts.alarms.evaluate(parts.clock.now)  # the pass's retries
        assert receiver.received()[-1] == missed, "the same message, with its kind and id"
        message = parts.alarms.history("errors-high")[0]
        assert (message.kind, message.notifications[-1].ok) == ("deployment_rollback", True)
        assert message.notifications[-1].attempts == 2
    # The message is no state change: the alarm's state, and what put it there, stay.
    assert parts.alarms.state("errors-high").state is AlarmState.ALARM


def test_an_alarm_a_deployment_watches_cannot_be_deleted_and_one_gone_pauses_it(
    parts: Parts,
) -> None:
    parts.alarms.create("p99", endpoint=ENDPOINT, metric="latency_p99_ms", comparison=">",
                        threshold=1000, window=MIN)  # fmt: skip
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary",
                            wait=timedelta(minutes=5), alarms=["p99"]).deployment  # fmt: skip
    assert d is not None
    with pytest.raises(Conflict, match=f"alarm 'p99' is watched by deployment {d.id} of endpoint"):
        parts.alarms.delete("p99")
    assert parts.alarms.state("p99").rule.name == "p99"
    # Gone all the same (straight from the store): still preparing, the deployment pauses at
    # once and says why, rather than waiting for its maximum duration.
    parts.alarm_store.delete("p99")
    assert tick(parts) == [Action.PAUSE]
    paused = parts.service.get(ENDPOINT)
    assert paused.state is DeploymentState.PAUSED and paused.step == 0
    assert "alarm 'p99' no longer exists" in paused.reason
    assert parts.weights() == {"main": 1.0, "main.next": 0.0}  # nothing moved
    # Once it has ended, its alarms can go.
    parts.service.stop(ENDPOINT)
    parts.alarms.create("p99", endpoint=ENDPOINT, metric="latency_p99_ms", comparison=">",
                        threshold=1000, window=MIN)  # fmt: skip
    parts.alarms.delete("p99")
    with pytest.raises(NotFound):
        parts.alarms.state("p99")


def test_a_deployment_whose_evaluation_breaks_leaves_the_others_evaluated(
    parts: Parts, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    parts.endpoint_store.create_endpoint("other", (Variant("main", "churn", 1, 1.0),))
    first = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary").deployment
    second = parts.service.start("other", {"main": "churn:2"}, strategy="canary").deployment
    assert first is not None and second is not None
    controller = parts.controller()
    evaluate = controller._evaluate

    def broken(deployment_id: int, now: Any) -> Any:
        if deployment_id == first.id:
            raise OverflowError("date value out of range")  # a defect, say
        return evaluate(deployment_id, now)

    monkeypatch.setattr(controller, "_evaluate", broken)
    decided = controller.run_once(parts.clock.advance(STEP))
    assert [d.action for d in decided] == [Action.ADVANCE]
    assert (parts.service.get(ENDPOINT).step, parts.service.get("other").step) == (0, 1)
    assert f"deployment {first.id} could not be evaluated" in caplog.text
    assert "OverflowError" in caplog.text
    # The same defect again is not logged again on every pass.
    caplog.clear()
    controller.run_once(parts.clock.advance(STEP))
    assert "could not be evaluated" not in caplog.text


def test_a_server_that_cannot_load_the_new_variant_rolls_it_back(parts: Parts) -> None:
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary").deployment
    assert d is not None
    parts.report(config=d.config or 0, pid=1)
    parts.report(config=1, pid=2, failure="churn:2 failed to load: artifact missing")
    assert tick(parts) == [Action.ROLLBACK]
    found = parts.service.get(ENDPOINT)
    assert "server vm:2 could not load config" in found.reason
    assert parts.weights() == {"main": 1.0}


def test_the_maximum_duration_rolls_back_a_paused_deployment(parts: Parts) -> None:
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary",
                        wait=timedelta(minutes=5), max_duration=timedelta(minutes=30))  # fmt: skip
    tick(parts)
    assert tick(parts, 5 * MIN) == [Action.PAUSE]
    assert tick(parts, 20 * MIN) == []
    assert tick(parts, 5 * MIN) == [Action.ROLLBACK]
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.ROLLED_BACK and "maximum duration (30m)" in d.reason


def test_pause_stop_and_manual_rollback(parts: Parts) -> None:
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="linear", step_size=50)
    tick(parts)
    paused, changed = parts.service.pause(ENDPOINT)
    assert changed and paused.state is DeploymentState.PAUSED
    assert parts.service.pause(ENDPOINT)[1] is False
    back = parts.service.rollback(ENDPOINT)
    assert back.deployment is not None
    assert back.deployment.state is DeploymentState.ROLLED_BACK
    assert [(v.name, v.version) for v in back.endpoint.config.variants] == [("main", 1)]
    assert back.deployment.reason.startswith("rolled back by hand at step 2")
    parts.service.start(ENDPOINT, {"green": "churn:3"}, strategy="canary")
    tick(parts)
    kept = parts.weights()
    assert kept == {"main": 0.9, "green": 0.1}, "a new name is kept as it is"
    stopped = parts.service.stop(ENDPOINT)
    assert stopped.state is DeploymentState.STOPPED and parts.weights() == kept
    assert parts.service.steps(stopped)[-1].outcome == "stopped"
    assert [d.state for d in parts.service.list_deployments(ENDPOINT)] == [
        DeploymentState.STOPPED,
        DeploymentState.ROLLED_BACK,
    ]


def test_a_stop_while_preparing_returns_the_endpoint_to_its_config_before(parts: Parts) -> None:
    """Before any traffic moved there is no step's mix to keep: the stop once left the new
    variant in the endpoint at 0 % (``main.next``, loaded by every server, for good)."""
    before = parts.current_variants()
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary").deployment
    assert d is not None and d.current.kind is StepKind.PREPARE
    assert parts.weights() == {"main": 1.0, "main.next": 0.0}
    stopped = parts.service.stop(ENDPOINT)
    assert stopped.state is DeploymentState.STOPPED and stopped.pending is None
    assert parts.current_variants() == before, "exactly the variants before the deployment"
    history = parts.endpoints.history(ENDPOINT)
    assert [c.change for c in history] == [
        ConfigChange.CREATE, ConfigChange.UPDATE, ConfigChange.ROLLBACK,
    ]  # fmt: skip
    assert stopped.config == history[-1].number
    assert stopped.reason == (
        "stopped by hand at step 1 (prepare), before any traffic moved; the endpoint is back "
        f"on the variants of config {d.source_config}"
    )
    last = parts.service.decisions(stopped)[-1]
    assert (last.action, last.reason, last.actor) == (Action.STOP, stopped.reason, "user")
    assert parts.service.steps(stopped)[-1].outcome == "stopped"
    assert tick(parts) == [], "nothing left to drive"
    # The endpoint's own rollback then goes to the config before the deployment's, as after
    # a deployment rolled back.
    with pytest.raises(InvalidInput, match="no earlier config"):
        parts.endpoints.rollback(ENDPOINT)


def test_an_update_to_the_config_the_endpoint_serves_changes_nothing(parts: Parts) -> None:
    """A guarded update to the live config once started a whole deployment (the same model
    as ``main`` and ``main.next``, compared with itself); a plain one wrote the same config
    again. Neither changes anything now, and each says so."""
    parts.endpoints.update(ENDPOINT, {"main": "churn:1"})  # as a user made it (``requested``)
    before = parts.endpoints.history(ENDPOINT)
    for strategy in ("canary", "linear", "blue-green", "all-at-once"):
        kept = parts.service.start(ENDPOINT, {"main": "churn:1"}, strategy=strategy)
        assert (kept.changed, kept.deployment) == (False, None), strategy
        assert kept.endpoint.config == before[-1]
    endpoint, changed = parts.endpoints.update_if_changed(ENDPOINT, {"main": "churn:1"})
    assert not changed and endpoint.config == before[-1]
    assert parts.endpoints.update(ENDPOINT, {"main": "churn:1"}).config == before[-1]
    assert parts.endpoints.history(ENDPOINT) == before
    assert parts.service.list_deployments(ENDPOINT) == []
    # One thing other than the live config is a change: a batching option.
    batched = parts.service.start(
        ENDPOINT, {"main": "churn:1"}, batching={"main": Batching(8)}, strategy="canary"
    )
    assert batched.changed and batched.deployment is not None
    assert batched.deployment.state is DeploymentState.RUNNING


def test_a_change_of_the_endpoint_by_hand_stops_the_deployment(parts: Parts) -> None:
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary")
    tick(parts)
    parts.endpoints.set_weights(ENDPOINT, {"main.next": 0.5})
    assert tick(parts) == [Action.STOP]
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.STOPPED
    assert "changed outside the deployment" in d.reason
    assert parts.weights() == {"main": 0.9, "main.next": 0.5}, "left as it was set"


def test_deleting_the_endpoint_ends_its_deployment(parts: Parts) -> None:
    """In the deleting transaction: the deployment once stayed RUNNING until a controller
    pass, refusing meanwhile a new deployment of an endpoint created again under the name."""
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary").deployment
    assert d is not None
    tick(parts)
    parts.endpoints.delete(ENDPOINT)
    stopped = parts.service.get(ENDPOINT)
    assert (stopped.state, stopped.pending) == (DeploymentState.STOPPED, None)
    assert stopped.ended_at is not None
    assert stopped.reason == "the endpoint was deleted at step 2 (shift 10%)"
    last = parts.service.decisions(stopped)[-1]
    assert (last.action, last.reason) == (Action.STOP, stopped.reason)
    assert all(s.ended_at is not None for s in parts.service.steps(stopped))
    assert tick(parts) == [], "nothing left to drive"
    parts.endpoints.create(ENDPOINT, {"main": "churn:1"})
    again = parts.service.start(ENDPOINT, {"main": "churn:3"}, strategy="canary").deployment
    assert again is not None and again.id != d.id and again.state is DeploymentState.RUNNING


def test_an_endpoint_deleted_and_created_again_is_not_taken_over(parts: Parts) -> None:
    """Its configs count from 1 again: the deployment once found "its" config number on the
    new endpoint and went on, writing the deleted endpoint's new model into it (beside the new
    endpoint's first config) in place of what the user had set."""
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary").deployment
    assert d is not None and d.config == 2
    parts.endpoints.delete(ENDPOINT)
    parts.endpoints.create(ENDPOINT, {"x": "churn:1"})
    parts.endpoints.update(ENDPOINT, {"y": "churn:3"})
    assert parts.endpoint_store.get_endpoint(ENDPOINT).config.number == d.config
    assert tick(parts) == []
    assert parts.weights() == {"y": 1.0}, "left as it was set"
    assert [c.change.value for c in parts.endpoints.history(ENDPOINT)] == ["create", "update"]
    stopped = parts.service.get(ENDPOINT, d.id)
    assert stopped.state is DeploymentState.STOPPED
    assert "endpoint was deleted" in stopped.reason


@pytest.mark.parametrize("given", ["1", True, 2.5, [1]])
def test_a_deployment_id_that_is_no_number_is_refused(parts: Parts, given: Any) -> None:
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary")
    with pytest.raises(InvalidInput, match="a deployment is named by its number"):
        parts.service.get(ENDPOINT, given)  # "1" was a TypeError; True read deployment 1


def test_all_at_once_is_a_plain_update(parts: Parts) -> None:
    done = parts.service.start(ENDPOINT, {"main": "churn:3"}, strategy="all-at-once")
    assert done.deployment is None
    assert [v.version for v in done.endpoint.config.variants] == [3]
    assert parts.service.list_deployments() == []


def test_listing_an_endpoints_deployments_names_what_is_wrong(parts: Parts) -> None:
    """An endpoint that is not a name, or that never was, listed as having no deployment."""
    with pytest.raises(InvalidName, match="endpoint name"):
        parts.service.list_deployments("bad name!")
    with pytest.raises(EndpointNotFound, match="nowhere"):
        parts.service.list_deployments("nowhere")
    assert parts.service.list_deployments(ENDPOINT) == []  # it exists: none yet
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary").deployment
    assert d is not None
    parts.endpoints.delete(ENDPOINT)  # its deployments' history stays listed
    assert [x.id for x in parts.service.list_deployments(ENDPOINT)] == [d.id]


def test_times_are_those_of_the_injected_clock(parts: Parts) -> None:
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary").deployment
    assert d is not None and d.started_at == T0


def test_a_rollout_that_names_a_shadow_again_must_say_whether_it_stays_one(
    parts: Parts,
) -> None:
    parts.endpoints.update(ENDPOINT, {"main": "churn:1", "trial": "churn:2"}, shadows={"trial": 20})
    with pytest.raises(InvalidInput, match=r"'trial' \(20% of requests\).* is a shadow now"):
        parts.service.start(ENDPOINT, {"main": "churn:3", "trial": "churn:2"}, strategy="canary")
    assert parts.service.list_deployments(ENDPOINT) == []
    started = parts.service.start(
        ENDPOINT, {"main": "churn:3", "trial": "churn:2"}, strategy="canary",
        shadows={"trial": 20},
    )  # fmt: skip
    assert started.deployment is not None


def test_a_scheduler_pass_rolls_back_before_it_waits_for_any_receiver(parts: Parts) -> None:
    """One pass records the alarm's change, lets the deployment roll back on it, and only then
    sends the change to the sinks: the rollback's own message reaches the receiver first (a
    receiver that hangs until its timeout would otherwise hold the rollback back)."""
    with webhook_receiver() as receiver:
        _blue_green_watched(parts, receiver.url)
        minute = parts.clock.now.replace(second=0, microsecond=0)
        parts.serve("main.next", minute, 100, errors=60)
        monitors = MonitorService(
            parts.monitor_store, parts.leases, lambda *a, **k: [],
            check_endpoint=parts.endpoint_store.get_endpoint, clock=parts.clock,
        )  # fmt: skip
        scheduler = Scheduler(monitors, parts.alarms, deployments=parts.controller())
        done = scheduler.run_once(parts.clock.advance(MIN))
        assert [d.action for d in done.decisions] == [Action.ROLLBACK]
        assert [(e.alarm, e.new) for e in done.events] == [("errors-high", AlarmState.ALARM)]
        assert [b["kind"] for b in receiver.received()] == ["deployment_rollback", "state_change"]
        assert [n.ok for n in done.events[0].notifications if n.sink.startswith("webhook")] == [
            True
        ]


def test_a_failing_deployment_pass_still_tells_the_sinks(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook_receiver() as receiver:
        _blue_green_watched(parts, receiver.url)
        parts.serve("main.next", parts.clock.now.replace(second=0, microsecond=0), 100, errors=60)
        controller = parts.controller()

        def broken(now: Any = None) -> list[Any]:
            raise RuntimeError("controller bug")

        monkeypatch.setattr(controller, "run_once", broken)
        monitors = MonitorService(
            parts.monitor_store, parts.leases, lambda *a, **k: [],
            check_endpoint=parts.endpoint_store.get_endpoint, clock=parts.clock,
        )  # fmt: skip
        scheduler = Scheduler(monitors, parts.alarms, deployments=controller)
        with pytest.raises(RuntimeError, match="controller bug"):
            scheduler.run_once(parts.clock.advance(MIN))
        assert [b["kind"] for b in receiver.received()] == ["state_change"]
        (event,) = parts.alarms.history("errors-high")
        assert [n.ok for n in event.notifications if n.sink.startswith("webhook")] == [True]


def _blue_green_aftertraffic(parts: Parts) -> None:
    """Five minutes of healthy traffic on the old ``main`` (400 a minute), then a blue/green
    deployment of churn:2 baking 5 minutes, switched (all traffic on ``main.next``)."""
    for i in range(5):
        parts.serve("main", parts.clock.now + i * MIN, 400)
    parts.clock.advance(5 * MIN)
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="blue-green",
                        bake=timedelta(minutes=5), min_requests=20)  # fmt: skip
    assert tick(parts) == [Action.ADVANCE]
    assert parts.weights() == {"main": 0.0, "main.next": 1.0}


def test_a_blue_green_bake_compares_the_new_errors_with_the_old_before_the_switch(
    parts: Parts,
) -> None:
    """The bake of a blue/green deployment is its only watched time, and the old config
    serves nothing then: the error rate and p99 were not tested at all ("nothing to compare
    with"), so a new model failing every one of its 2,000 requests SUCCEEDED (found with a
    real server: a model taking 3 features where callers send 4). The new side is now
    compared with what the old variants served before the switch."""
    _blue_green_aftertraffic(parts)
    traffic(parts, 5, 1.0, errors_new=400)
    assert tick(parts, 5 * MIN) == [Action.ROLLBACK]
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.ROLLED_BACK
    assert "error rate higher: new 100.00% vs old 0.00% before the switch" in d.reason
    assert parts.weights() == {"main": 1.0}
    errors = {c.name: c for c in parts.service.decisions(d)[-1].checks}["error_rate"]
    assert errors.verdict is Verdict.FAIL and errors.values["old_requests"] == 2000


def test_a_healthy_blue_green_bake_passes_against_the_old_before_the_switch(
    parts: Parts,
) -> None:
    _blue_green_aftertraffic(parts)
    traffic(parts, 5, 1.0)
    assert tick(parts, 5 * MIN) == [Action.COMPLETE]
    d = parts.service.get(ENDPOINT)
    checks = {c.name: c for c in parts.service.decisions(d)[-1].checks}
    assert checks["error_rate"].verdict is Verdict.PASS
    assert checks["latency_p99"].verdict is Verdict.PASS
    assert "before the switch" in checks["error_rate"].detail


def test_a_shadow_the_new_config_keeps_is_served_once_during_the_rollout(parts: Parts) -> None:
    """The kept shadow joined under ``trial.next`` beside the old ``trial``, both sampling
    the same model: every sampled request was copied to it twice, and its metrics and captured
    rows were doubled and split over two names until the deployment ended."""
    parts.endpoints.update(ENDPOINT, {"main": "churn:1", "trial": "churn:2"}, shadows={"trial": 20})
    started = parts.service.start(
        ENDPOINT, {"main": "churn:3", "trial": "churn:2"}, strategy="canary",
        wait=timedelta(minutes=5), bake=timedelta(0), min_requests=20, shadows={"trial": 50},
    )  # fmt: skip
    d = started.deployment
    assert d is not None and d.served_names == {"main": "main.next", "trial": "trial"}

    def shadows() -> list[tuple[str, str, int | None, float | None]]:
        return [(v.name, v.model, v.version, v.shadow) for v in parts.current_variants()
                if v.is_shadow]  # fmt: skip

    # It takes the old one's place from the first step, with the new config's sampling.
    assert shadows() == [("trial", "churn", 2, 50.0)]
    assert tick(parts) == [Action.ADVANCE]
    assert parts.weights() == {"main": 0.9, "trial": 0.0, "main.next": 0.1}
    assert shadows() == [("trial", "churn", 2, 50.0)]
    traffic(parts, 6, 0.1)
    assert tick(parts, 5 * MIN) == [Action.COMPLETE]
    assert shadows() == [("trial", "churn", 2, 50.0)]
    # A rollback returns to the old config, its shadow's sampling with it.
    back = parts.service.rollback(ENDPOINT)
    assert [(v.name, v.version, v.shadow) for v in back.endpoint.config.variants] == [
        ("main", 1, None), ("trial", 2, 20.0),
    ]  # fmt: skip


def test_a_shadow_of_another_model_under_an_old_shadows_name_joins_beside_it(
    parts: Parts,
) -> None:
    """Another model under the name is a new shadow: the old one stays until the old config
    retires, as every old shadow does."""
    parts.endpoints.update(ENDPOINT, {"main": "churn:1", "trial": "churn:2"}, shadows={"trial": 20})
    parts.service.start(
        ENDPOINT, {"main": "churn:1", "trial": "churn:3"}, strategy="canary",
        shadows={"trial": 20},
    )  # fmt: skip
    assert [(v.name, v.version) for v in parts.current_variants() if v.is_shadow] == [
        ("trial", 2), ("trial.next", 3),
    ]  # fmt: skip


def test_an_alarm_in_alarm_on_a_kept_shadow_refuses_the_start(parts: Parts) -> None:
    """The kept shadow is the same model under the same name: its alarm's state is its own,
    read as it is while the deployment runs, so in ALARM it refuses the start (it would roll
    the deployment back at the first pass)."""
    parts.endpoints.update(ENDPOINT, {"main": "churn:1", "trial": "churn:2"}, shadows={"trial": 20})
    parts.alarms.create("trial-errors", endpoint=ENDPOINT, variant="trial", metric="error_rate",
                        comparison=">", threshold=0.2, window=MIN)  # fmt: skip
    parts.serve("trial", parts.clock.now.replace(second=0, microsecond=0), 100, errors=60)
    parts.clock.advance(MIN)
    (event,) = parts.alarms.evaluate(parts.clock.now)
    assert event.new is AlarmState.ALARM
    with pytest.raises(Conflict, match="alarm 'trial-errors' is in ALARM now"):
        parts.service.start(ENDPOINT, {"main": "churn:3", "trial": "churn:2"}, strategy="canary",
                            shadows={"trial": 20}, alarms=["trial-errors"])  # fmt: skip
    assert parts.service.list_deployments(ENDPOINT) == []
