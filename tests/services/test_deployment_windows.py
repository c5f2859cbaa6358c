"""The window a step is judged on holds its own models' traffic only. The metric series are
per minute and per variant name, and a new variant serves as ``main.next`` in every
deployment: a deployment started in the minute another one ended would read that one's
``main.next`` (another model) as its own. Real stores (SQLite and PostgreSQL), injected clock.
"""

from __future__ import annotations

from datetime import timedelta

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
