"""Rolling back around a guarded deployment: a deployment that succeeded ends ROLLED_BACK when
its completion is what a rollback undoes (by ``deployments rollback`` or ``endpoints
rollback``), and is left as it ended when a later change, a change by hand or another endpoint
of the same name is what is undone. Real stores (SQLite and PostgreSQL), injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelyard.domain import ConfigChange
from modelyard.domain.deployment_decisions import Action
from modelyard.domain.deployments import DeploymentState
from modelyard.errors import Conflict, InvalidInput
from tests.services.deployment_parts import ENDPOINT, Parts, open_parts, tick, traffic
from tests.services.fixtures import parts_fixture

MIN = timedelta(minutes=1)


parts = parts_fixture(open_parts)


def _succeeded(parts: Parts) -> int:
    """A canary that completes (its bake of zero retires the old config at once); its id."""
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                        wait=timedelta(minutes=5), bake=timedelta(0), min_requests=20)  # fmt: skip
    tick(parts)
    traffic(parts, 6, 0.1)
    assert tick(parts, 5 * MIN) == [Action.COMPLETE]
    done = parts.service.get(ENDPOINT)
    assert done.state is DeploymentState.SUCCEEDED
    return done.id


def test_rolling_back_a_deployment_that_succeeded_records_it_rolled_back(parts: Parts) -> None:
    """`deployments rollback` right after a deployment completed put the old model back, but
    `deployments show` went on saying "SUCCEEDED: the new config serves alone"."""
    done = _succeeded(parts)
    back = parts.service.rollback(ENDPOINT)
    assert [(v.name, v.version) for v in back.endpoint.config.variants] == [("main", 1)]
    assert back.endpoint.config.change is ConfigChange.ROLLBACK
    assert back.deployment is not None and back.deployment.id == done
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.ROLLED_BACK
    assert d.reason == (
        "rolled back by hand after it succeeded; all traffic back on the variants of config 1"
    )
    last = parts.service.decisions(d)[-1]
    assert (last.action, last.actor, last.reason) == (Action.ROLLBACK, "user", d.reason)
    # Once rolled back, a rollback is the endpoint's own again (one further back: none here).
    with pytest.raises(InvalidInput, match="no earlier config"):
        parts.service.rollback(ENDPOINT)
    assert parts.service.get(ENDPOINT).state is DeploymentState.ROLLED_BACK


def test_a_rollback_of_a_later_change_leaves_a_succeeded_deployment_as_it_is(
    parts: Parts,
) -> None:
    """The endpoint changed by hand after the deployment: the rollback undoes that change
    only, and the deployment's new config is current again, so it stays SUCCEEDED."""
    done = _succeeded(parts)
    parts.endpoints.update(ENDPOINT, {"main": "churn:3"})
    back = parts.service.rollback(ENDPOINT)
    assert back.deployment is None
    assert [(v.name, v.version) for v in back.endpoint.config.variants] == [("main", 2)]
    assert parts.service.get(ENDPOINT, done).state is DeploymentState.SUCCEEDED


def test_a_rollback_after_a_change_by_hand_rolls_the_endpoint_back(parts: Parts) -> None:
    """Before the controller sees the change, the deployment is as dead as after: the manual
    rollback records it stopped and undoes the endpoint's last change, as it does once the
    controller has stopped it (it once stopped it and rolled nothing back, with success)."""
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary")
    tick(parts)
    canary = parts.weights()
    parts.endpoints.update(ENDPOINT, {"solo": "churn:3"})
    back = parts.service.rollback(ENDPOINT)
    assert back.deployment is not None and back.deployment.state is DeploymentState.STOPPED
    assert "changed outside the deployment" in back.deployment.reason
    assert back.endpoint.config.change is ConfigChange.ROLLBACK
    assert parts.weights() == canary, "the config before the change by hand"
    assert parts.service.get(ENDPOINT).state is DeploymentState.STOPPED


def test_an_endpoint_rollback_that_undoes_a_completion_records_it_rolled_back(
    parts: Parts,
) -> None:
    """`endpoints rollback` right after a deployment completed put the old model back as
    `deployments rollback` does, but the deployment went on saying SUCCEEDED."""
    done = _succeeded(parts)
    back = parts.service.rollback_endpoint(ENDPOINT)
    assert [(v.name, v.version) for v in back.endpoint.config.variants] == [("main", 1)]
    assert back.deployment is not None and back.deployment.id == done
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.ROLLED_BACK
    assert d.reason.startswith("rolled back by hand after it succeeded")
    # Once rolled back, it is the endpoint's own rollback (none further back here).
    with pytest.raises(InvalidInput, match="no earlier config"):
        parts.service.rollback_endpoint(ENDPOINT)


def test_an_endpoint_rollback_during_a_deployment_is_a_change_by_hand(parts: Parts) -> None:
    """Unlike `deployments rollback`, it is a change by hand: the deployment stops on it,
    with the endpoint where the rollback left it (the config before the deployment)."""
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary")
    assert tick(parts) == [Action.ADVANCE]
    back = parts.service.rollback_endpoint(ENDPOINT)
    assert back.deployment is None
    assert parts.weights() == {"main": 1.0}
    assert tick(parts) == [Action.STOP]
    assert parts.service.get(ENDPOINT).state is DeploymentState.STOPPED
    assert parts.weights() == {"main": 1.0}


def test_a_rollback_on_an_endpoint_created_again_leaves_the_old_deployment_as_it_ended(
    parts: Parts,
) -> None:
    """The endpoint deleted after its deployment succeeded, and created again up to a config
    of the same number and variants: a rollback there marked the deleted endpoint's deployment
    ROLLED_BACK, "back on the variants of config 1", while it undid the new endpoint's own
    last change (to config 3's variants)."""
    done = _succeeded(parts)
    ended = parts.service.get(ENDPOINT, done)
    assert ended.config == 4  # the new endpoint's fourth config below has its number
    parts.endpoints.delete(ENDPOINT)
    parts.endpoints.create(ENDPOINT, {"main": "churn:3"})
    for rollback in (parts.service.rollback, parts.service.rollback_endpoint):
        for ref in ("churn:1", "churn:3", "churn:2"):
            parts.endpoints.update(ENDPOINT, {"main": ref})
        current = parts.endpoint_store.get_endpoint(ENDPOINT).config
        assert current.variants == ended.target
        back = rollback(ENDPOINT)
        assert back.deployment is None
        assert [(v.name, v.version) for v in back.endpoint.config.variants] == [("main", 3)]
        assert parts.service.get(ENDPOINT, done) == ended
        # Back to config 1's model, so the next round of updates ends on number 4 again.
        parts.endpoints.delete(ENDPOINT)
        parts.endpoints.create(ENDPOINT, {"main": "churn:3"})


def test_two_endpoint_rollbacks_at_once_undo_the_completion_once(parts: Parts) -> None:
    """Two ``endpoints rollback`` at once, both judging the completion current: the one that
    lands second is a Conflict. It rolled one config further back (past the deployment's
    source config) and recorded a second rollback (found in review)."""
    done = _succeeded(parts)
    source = parts.endpoints.history(ENDPOINT)[0].number
    real = parts.service._rollback
    raced: list[str] = []

    def racing(endpoint: str, **kwargs: object) -> object:
        if not raced:  # the other caller's rollback lands between this one's read and write
            raced.append(endpoint)
            parts.service.rollback_endpoint(endpoint)
        return real(endpoint, **kwargs)

    parts.service._rollback = racing
    with pytest.raises(Conflict, match="changed meanwhile"):
        parts.service.rollback_endpoint(ENDPOINT)
    d = parts.service.get(ENDPOINT, done)
    assert d.state is DeploymentState.ROLLED_BACK
    rollbacks = [x for x in parts.service.decisions(d) if x.action is Action.ROLLBACK]
    assert len(rollbacks) == 1
    current = parts.endpoints.get(ENDPOINT).config
    assert [(v.name, v.version) for v in current.variants] == [("main", 1)]
    assert current.change is ConfigChange.ROLLBACK and source == 1
