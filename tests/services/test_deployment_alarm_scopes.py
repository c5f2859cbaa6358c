"""Which alarms judge a guarded deployment's new models, over real stores (SQLite and
PostgreSQL): an alarm on a replaced variant watches the new models during the rollout, an
endpoint-wide alarm the old models set off does not roll the new ones back, a canary's own
breach counts though the endpoint stays under, silence is no breach, and an alarm on another
endpoint is watched by its own state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelyard.domain import Variant
from modelyard.domain.alarms import AlarmState
from modelyard.domain.deployment_decisions import Action, Verdict
from modelyard.domain.deployments import DeploymentState
from modelyard.domain.metrics import SeriesRow
from modelyard.errors import Conflict
from tests.services.deployment_parts import (
    ENDPOINT,
    Parts,
    open_parts,
    served_stats,
    tick,
    traffic,
)
from tests.services.fixtures import parts_fixture

MIN = timedelta(minutes=1)


parts = parts_fixture(open_parts)


def test_an_alarm_on_a_replaced_variant_watches_the_new_models_during_the_rollout(
    parts: Parts,
) -> None:
    # While both serve, the new ``main`` is ``main.next``: an alarm on variant ``main`` read
    # as stored watched only the old models, rolling the fix back on the errors it fixes and
    # never seeing the new models' own.
    parts.alarms.create("main-errors", endpoint=ENDPOINT, variant="main", metric="error_rate",
                        comparison=">", threshold=0.2, window=MIN)  # fmt: skip
    minute = parts.clock.now.replace(second=0, microsecond=0)
    parts.serve("main", minute, 100, errors=60)  # the old models fail: why the fix is deployed
    parts.clock.advance(MIN)
    (event,) = parts.alarms.evaluate(parts.clock.now)
    assert event.new is AlarmState.ALARM
    # Started all the same: its state is the old models', which the deployment replaces.
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=50,
                            wait=10 * MIN, alarms=["main-errors"],
                            min_requests=10_000).deployment  # fmt: skip
    assert d is not None
    assert tick(parts) == [Action.ADVANCE]
    traffic(parts, 2, 0.5, errors_old=150)
    parts.clock.advance(2 * MIN)
    parts.alarms.evaluate(parts.clock.now)
    assert parts.alarms.state("main-errors").state is AlarmState.ALARM  # the old models' errors
    assert tick(parts) == [], "the old models' errors never roll the new ones back"
    # The new models' errors do roll it back, before the comparison has its requests.
    traffic(parts, 1, 0.5, errors_new=150)
    parts.clock.advance(MIN)
    assert tick(parts) == [Action.ROLLBACK]
    done = parts.service.get(ENDPOINT)
    assert done.state is DeploymentState.ROLLED_BACK
    assert (
        "alarm main-errors, judged on variant main.next (the new 'main' while the "
        "deployment runs), is in ALARM"
    ) in done.reason
    alarm = {c.name: c for c in parts.service.decisions(done)[-1].checks}["alarm main-errors"]
    assert alarm.verdict is Verdict.FAIL and alarm.values["variant"] == "main.next"


def _endpoint_alarm(parts: Parts) -> None:
    """``errors-high``: the whole endpoint's error rate above 20%, over one minute."""
    parts.alarms.create("errors-high", endpoint=ENDPOINT, metric="error_rate", comparison=">",
                        threshold=0.2, window=MIN)  # fmt: skip


def test_an_endpoint_alarm_the_old_models_set_off_does_not_roll_the_new_back(parts: Parts) -> None:
    _endpoint_alarm(parts)
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                        wait=timedelta(minutes=5), bake=timedelta(0), min_requests=20,
                        alarms=["errors-high"])  # fmt: skip
    tick(parts)
    traffic(parts, 6, 0.1, errors_old=180)  # the old models fail half their requests
    parts.clock.advance(2 * MIN)
    (event,) = parts.alarms.evaluate(parts.clock.now)
    assert event.new is AlarmState.ALARM, "the endpoint's own state: 45% errors"
    assert tick(parts, 3 * MIN) == [Action.COMPLETE]
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.SUCCEEDED
    check = {c.name: c for c in parts.service.decisions(d)[-1].checks}["alarm errors-high"]
    assert check.verdict is Verdict.PASS
    assert "OK judged on the new variant main.next: the old models'" in check.detail
    assert check.values["new_variants"] == {"main.next": "OK"}


def test_a_canarys_own_breach_counts_though_the_endpoint_stays_under(parts: Parts) -> None:
    _endpoint_alarm(parts)
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                        wait=timedelta(minutes=5), min_requests=20,
                        alarms=["errors-high"])  # fmt: skip
    tick(parts)
    traffic(parts, 3, 0.1, errors_new=20)  # half the canary's 40 requests a minute fail
    parts.clock.advance(2 * MIN)
    changes = parts.alarms.evaluate(parts.clock.now)
    assert [e.new for e in changes] == [AlarmState.OK], "5% on the whole endpoint"
    assert tick(parts, MIN) == [Action.ROLLBACK]
    d = parts.service.get(ENDPOINT)
    assert "alarm errors-high, judged on the new variant main.next, is in ALARM" in d.reason


def test_an_endpoint_alarm_with_the_new_variant_unjudged_neither_blames_nor_passes(
    parts: Parts,
) -> None:
    _endpoint_alarm(parts)
    minute = parts.clock.now.replace(second=0, microsecond=0)
    parts.serve("main", minute, 100, errors=60)  # the old models fail before it starts
    parts.clock.advance(MIN)
    (event,) = parts.alarms.evaluate(parts.clock.now)
    assert event.new is AlarmState.ALARM
    # Started all the same: the new models will be judged on their own.
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                        wait=timedelta(minutes=5), min_requests=20,
                        alarms=["errors-high"])  # fmt: skip
    assert tick(parts) == [Action.ADVANCE], "preparing, the new variant serves nothing"
    assert tick(parts, MIN) == [], "no data on the new variant yet: the step waits"
    assert tick(parts, 10 * MIN) == [Action.PAUSE], "nor does the alarm pass it"
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.PAUSED and "too few requests" in d.reason
    check = {c.name: c for c in parts.service.decisions(d)[-1].checks}["alarm errors-high"]
    assert check.verdict is Verdict.NOT_APPLICABLE
    assert "main.next has too little data to tell whether it is the old models'" in check.detail


def test_a_breaching_silence_on_the_new_variant_is_no_breach(parts: Parts) -> None:
    """A rule that counts the endpoint's silence as breaching does not count the new variant's:
    preparing, it serves nothing, and its first windows are empty."""
    parts.alarms.create("errors-high", endpoint=ENDPOINT, metric="error_rate", comparison=">",
                        threshold=0.2, window=MIN, missing="breaching")  # fmt: skip
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                        wait=timedelta(minutes=5), min_requests=20,
                        alarms=["errors-high"])  # fmt: skip
    assert tick(parts) == [Action.ADVANCE]
    traffic(parts, 1, 0.0)  # the old models answer; the canary has nothing yet
    assert tick(parts, MIN) == [], "no rollback on the canary's empty window"
    d = parts.service.get(ENDPOINT)
    check = {c.name: c for c in parts.service.decisions(d)[-1].checks}["alarm errors-high"]
    assert check.values["new_variants"] == {"main.next": "INSUFFICIENT_DATA"}


def test_a_count_on_a_replaced_variant_keeps_its_own_meaning(parts: Parts) -> None:
    """``requests < 100`` on variant main is not judged on a 10% canary (40 a minute there):
    counts read low on a share, so the rule keeps watching what it watched."""
    parts.alarms.create("quiet-main", endpoint=ENDPOINT, variant="main", metric="requests",
                        comparison="<", threshold=100, window=MIN)  # fmt: skip
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                        wait=timedelta(minutes=5), bake=timedelta(0), min_requests=20,
                        alarms=["quiet-main"])  # fmt: skip
    tick(parts)
    traffic(parts, 6, 0.1)
    parts.clock.advance(2 * MIN)
    parts.alarms.evaluate(parts.clock.now)
    assert parts.alarms.state("quiet-main").state is AlarmState.OK, "main: 360 a minute"
    assert tick(parts, 3 * MIN) == [Action.COMPLETE]
    d = parts.service.get(ENDPOINT)
    check = {c.name: c for c in parts.service.decisions(d)[-1].checks}["alarm quiet-main"]
    assert check.verdict is Verdict.PASS and "variant" not in check.values


def test_an_alarm_on_another_endpoint_is_watched_by_its_own_state(parts: Parts) -> None:
    """An alarm of endpoint ``billing-api`` watched by a deployment of ``churn-api`` (a
    downstream service's errors, as any CloudWatch alarm can guard a SageMaker deployment) is
    read by its own state: it was judged on billing-api's variant ``main.next``, which has
    none, so every controller pass failed ("not evaluated") and the deployment hung at its
    first step, neither moving nor rolling back, and an ALARM did not refuse the start."""
    other = "billing-api"
    parts.endpoint_store.create_endpoint(other, (Variant("main", "churn", 3, 1.0),))
    parts.alarms.create("billing-errors", endpoint=other, metric="error_rate", comparison=">",
                        threshold=0.2, window=MIN)  # fmt: skip

    def billing(errors: int) -> None:
        minute = parts.clock.now.replace(second=0, microsecond=0)
        stats = served_stats(100, errors)
        parts.metric_store.write([SeriesRow(other, "main", minute, 60, "vm:2:0", stats)])
        parts.clock.advance(MIN)
        parts.alarms.evaluate(parts.clock.now)

    billing(errors=0)
    assert parts.alarms.state("billing-errors").state is AlarmState.OK
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                        wait=timedelta(minutes=5), min_requests=20,
                        alarms=["billing-errors"])  # fmt: skip
    assert tick(parts) == [Action.ADVANCE]
    d = parts.service.get(ENDPOINT)
    check = {c.name: c for c in parts.service.decisions(d)[-1].checks}["alarm billing-errors"]
    assert check.verdict is Verdict.PASS
    billing(errors=60)
    assert parts.alarms.state("billing-errors").state is AlarmState.ALARM
    assert tick(parts) == [Action.ROLLBACK]
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.ROLLED_BACK
    assert "alarm billing-errors is in ALARM" in d.reason
    assert parts.weights() == {"main": 1.0}
    with pytest.raises(Conflict, match="alarm 'billing-errors' is in ALARM now"):
        parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary",
                            alarms=["billing-errors"])  # fmt: skip
