"""The window a step is judged on holds its own models' traffic only. The metric series are
per minute and per variant name, and a new variant serves as ``main.next`` in every
deployment: a deployment started in the minute another one ended would read that one's
``main.next`` (another model) as its own. Real stores (SQLite and PostgreSQL), injected clock.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelyard.domain.deployment_decisions import Action, Verdict
from modelyard.domain.deployments import DeploymentState
from tests.services.deployment_parts import ENDPOINT, T0, Parts, open_parts, tick, traffic
from tests.services.fixtures import parts_fixture

MIN = timedelta(minutes=1)

parts = parts_fixture(open_parts)


def _canary(parts: Parts, model: str) -> None:
    parts.service.start(ENDPOINT, {"main": model}, strategy="canary", canary_size=10,
                        wait=5 * MIN, bake=timedelta(0), min_requests=20)  # fmt: skip
    assert tick(parts) == [Action.ADVANCE]  # prepared: the canary step begins


def test_a_deployment_is_not_blamed_for_the_errors_of_the_one_rolled_back_before_it(
    parts: Parts,
) -> None:
    """A failing canary rolled back, and the fix deployed at once, in the same minute: the
    fix's canary step read the failed model's errors under ``main.next`` in that minute as
    its own and was rolled back at its first evaluation, before it had answered anything
    (seen live: "new 100.00% vs old 0.00%", the 2580 errors of the model before)."""
    _canary(parts, "churn:2")
    # The failing canary's minute, from a worker of its own (traffic() writes another's).
    parts.serve("main.next", T0, 200, errors=200, worker="vm:2:0")
    parts.serve("main", T0, 1800, worker="vm:2:0")
    assert tick(parts) == [Action.ROLLBACK]
    assert parts.service.get(ENDPOINT).state is DeploymentState.ROLLED_BACK

    parts.clock.advance(timedelta(seconds=10))  # the fix, 10:00:20
    _canary(parts, "churn:3")
    traffic(parts, 7, 0.1)  # from 10:00:25: 40 requests a minute on the fix, none failing
    actions = [a for _ in range(14) for a in tick(parts, timedelta(seconds=30))]
    assert Action.ROLLBACK not in actions, parts.service.get(ENDPOINT).reason
    assert Action.COMPLETE in actions
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.SUCCEEDED, d.reason
    passed = next(x for x in parts.service.decisions(d) if x.action is Action.COMPLETE)
    assert passed.window_start == T0 + MIN  # the minute the other model served in is left out
    checks = {c.name: c for c in passed.checks}
    assert checks["error_rate"].verdict is Verdict.PASS
    assert checks["error_rate"].values["new_errors"] == 0
    assert checks["window"].detail == (
        "the window starts at 10:01: variant 'main.next' served churn:2 in deployment 1, "
        "which ended at 10:00:10 (those answers are not this deployment's)"
    )


def _roll_back_a_failing_canary(parts: Parts, alarms: list[str]) -> None:
    """Deployment 1: churn:2's canary fails every request in the minute of T0 and is rolled
    back at 10:00:10; the fix, churn:3, starts at 10:00:20 (its canary step at 10:00:25)."""
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", canary_size=10,
                        wait=5 * MIN, bake=timedelta(0), min_requests=20,
                        alarms=alarms)  # fmt: skip
    assert tick(parts) == [Action.ADVANCE]
    parts.serve("main.next", T0, 200, errors=200, worker="vm:2:0")
    parts.serve("main", T0, 1800, worker="vm:2:0")
    assert tick(parts) == [Action.ROLLBACK]
    parts.clock.advance(timedelta(seconds=10))
    parts.service.start(ENDPOINT, {"main": "churn:3"}, strategy="canary", canary_size=10,
                        wait=5 * MIN, bake=timedelta(0), min_requests=20,
                        alarms=alarms)  # fmt: skip
    assert tick(parts) == [Action.ADVANCE], parts.service.get(ENDPOINT).reason


@pytest.mark.parametrize("variant", ["main", None], ids=["on-variant-main", "on-the-endpoint"])
def test_a_deployments_alarms_do_not_read_the_errors_of_the_one_rolled_back_before_it(
    parts: Parts, variant: str | None
) -> None:
    """The fix's named alarm (on the replaced ``main``, or on the whole endpoint: both are
    judged on ``main.next`` while the deployment runs) read the failed canary's errors under
    ``main.next`` in the minute both served in as the fix's own, and rolled the fix back as
    soon as that minute was judged (10:01:25, "judged on variant main.next ... is in ALARM"),
    though the comparison left that minute out."""
    parts.alarms.create("errors-high", endpoint=ENDPOINT, variant=variant, metric="error_rate",
                        comparison=">", threshold=0.05, window=MIN)  # fmt: skip
    _roll_back_a_failing_canary(parts, ["errors-high"])
    traffic(parts, 7, 0.1)  # from 10:00:25: 40 requests a minute on the fix, none failing
    actions = []
    for _ in range(14):  # the scheduler's pass: the alarms' own states, then the deployments
        parts.alarms.evaluate(parts.clock.advance(timedelta(seconds=30)))
        actions += tick(parts, timedelta(0))
    d = parts.service.get(ENDPOINT)
    assert Action.ROLLBACK not in actions, d.reason
    assert d.state is DeploymentState.SUCCEEDED, d.reason
    passed = next(x for x in parts.service.decisions(d) if x.action is Action.COMPLETE)
    alarm = {c.name: c for c in passed.checks}["alarm errors-high"]
    assert alarm.verdict is Verdict.PASS, alarm.detail  # judged on the fix's minutes: OK


def test_a_deployments_alarm_with_only_the_minutes_before_it_counts_for_nothing(
    parts: Parts,
) -> None:
    """The minutes left out are no data for the alarm (its windows there count for nothing,
    never as OK), and a step whose window was moved says so when it pauses."""
    # Ten windows of a minute: when the step pauses (10:06) they still reach back past 10:01.
    parts.alarms.create("main-errors", endpoint=ENDPOINT, variant="main", metric="error_rate",
                        comparison=">", threshold=0.05, window=MIN, windows=10)  # fmt: skip
    _roll_back_a_failing_canary(parts, ["main-errors"])
    parts.clock.advance(timedelta(seconds=65))  # 10:01:30: the alarm judges 10:00-10:01
    assert tick(parts) == [], parts.service.get(ENDPOINT).reason
    # Nothing reaches the fix: at the end of its wait (from 10:01) the step is paused.
    actions = [a for _ in range(12) for a in tick(parts, timedelta(seconds=30))]
    assert actions == [Action.PAUSE]
    d = parts.service.get(ENDPOINT)
    assert d.state is DeploymentState.PAUSED
    assert "only 0 request(s) reached the new variants" in d.reason
    assert (
        "the window starts at 10:01: variant 'main.next' served churn:2 in deployment 1, "
        "which ended at 10:00:10 (those answers are not this deployment's)"
    ) in d.reason
    paused = parts.service.decisions(d)[-1]
    alarm = {c.name: c for c in paused.checks}["alarm main-errors"]
    assert alarm.verdict is Verdict.NOT_APPLICABLE, alarm.detail
    assert "from 10:01 on" in alarm.detail


def test_a_deployments_alarm_reads_its_new_variants_only_from_its_start(parts: Parts) -> None:
    """An alarm's windows may reach back past the deployment's start, to minutes in which its
    new variants' names (``main.next``) served an earlier deployment's model: the fix started
    two minutes after the failed canary ended (no minute shared) was rolled back while it
    prepared, before it served anything, on the canary's errors in one of the alarm's
    windows."""
    parts.alarms.create("main-errors", endpoint=ENDPOINT, variant="main", metric="error_rate",
                        comparison=">", threshold=0.05, window=MIN, windows=5)  # fmt: skip
    _canary(parts, "churn:2")
    parts.serve("main.next", T0, 200, errors=200, worker="vm:2:0")
    parts.serve("main", T0, 1800, worker="vm:2:0")
    assert tick(parts) == [Action.ROLLBACK]
    parts.clock.advance(2 * MIN)  # 10:02:10
    parts.service.start(ENDPOINT, {"main": "churn:3"}, strategy="canary", canary_size=10,
                        wait=5 * MIN, bake=timedelta(0), min_requests=20,
                        alarms=["main-errors"])  # fmt: skip
    assert tick(parts) == [Action.ADVANCE], parts.service.get(ENDPOINT).reason
    traffic(parts, 7, 0.1)  # the fix's canary: 40 requests a minute, none failing
    actions = [a for _ in range(14) for a in tick(parts, timedelta(seconds=30))]
    d = parts.service.get(ENDPOINT)
    assert Action.ROLLBACK not in actions, d.reason
    assert d.state is DeploymentState.SUCCEEDED, d.reason
    passed = next(x for x in parts.service.decisions(d) if x.action is Action.COMPLETE)
    assert "window" not in {c.name for c in passed.checks}  # the comparison's window is its step's
    alarm = {c.name: c for c in passed.checks}["alarm main-errors"]
    assert alarm.verdict is Verdict.PASS, alarm.detail
