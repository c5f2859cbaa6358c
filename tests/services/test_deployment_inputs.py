"""Every bad deployment is refused with an error naming the problem, and changes nothing: the
endpoint keeps its config and history, and no deployment is recorded. Also the plans the
strategies make (steps, waits, bake, maximum duration)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from modelyard.domain import Variant
from modelyard.domain.deployments import StepKind, Strategy
from modelyard.errors import Conflict, EndpointNotFound, InvalidInput, NotFound
from modelyard.services.deployment_plan import blend, describe, plan_rollout, served_names
from tests.services.deployment_parts import ENDPOINT, Parts, open_parts
from tests.services.fixtures import parts_fixture

MIN = timedelta(minutes=1)


parts = parts_fixture(open_parts)


def _state(parts: Parts) -> tuple[Any, ...]:
    return (
        [(c.number, c.change, c.variants) for c in parts.endpoints.history(ENDPOINT)],
        parts.service.list_deployments(),
        parts.endpoint_store.revision(),
    )


BAD: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("step-over-100", {"strategy": "linear", "step_size": 120}, InvalidInput,
     r"step size must be at most 100%, got 120%"),
    ("never-reaches-100", {"strategy": "linear", "step_size": 30}, InvalidInput,
     r"equal steps of 30% never reach 100% exactly \(30%, 60%, 90%, 120%\)"),
    ("zero-step", {"strategy": "linear", "step_size": 0}, InvalidInput, r"above 0%"),
    # A million steps once took every byte of memory: each is a config and a row of history.
    ("tiny-step", {"strategy": "linear", "step_size": 1e-6}, InvalidInput,
     r"a linear step must be at least 1% \(100 steps at most\), got 1e-06%"),
    ("under-1-percent", {"strategy": "linear", "step_size": 0.5}, InvalidInput,
     r"at least 1%"),
    # From Python no parser caps them: a deadline past year 9999 once stopped the controller.
    ("huge-wait", {"strategy": "canary", "wait": timedelta(days=999_999)}, InvalidInput,
     r"the wait must be at most ten years"),
    ("huge-max-duration", {"strategy": "canary", "max_duration": timedelta(days=999_999)},
     InvalidInput, r"the maximum duration must be at most ten years"),
    ("zero-max-duration", {"strategy": "canary", "max_duration": timedelta(0)}, InvalidInput,
     r"the maximum duration must be longer than zero"),
    # Plans are shown in whole seconds: a 500 ms wait read "0s", and a refusal "the maximum
    # duration (0s) must be longer than the waits and the bake together (0s)".
    ("sub-second-wait", {"strategy": "canary", "wait": timedelta(milliseconds=500)},
     InvalidInput, r"the wait must be a whole number of seconds, got 0.5s"),
    ("fractional-max-duration", {"strategy": "canary", "wait": MIN, "bake": timedelta(0),
                                 "max_duration": timedelta(seconds=60.5)}, InvalidInput,
     r"the maximum duration must be a whole number of seconds, got 60.5s"),
    ("fractional-bake", {"strategy": "blue-green", "bake": timedelta(seconds=1.25)},
     InvalidInput, r"the bake must be a whole number of seconds, got 1.25s"),
    ("wait-in-seconds", {"strategy": "canary", "wait": 300}, InvalidInput,
     r"the wait must be a timedelta or text such as 10m or 1h30m, got int 300"),
    ("bake-text-not-a-duration", {"strategy": "canary", "bake": "ten minutes"}, InvalidInput,
     r"'ten minutes'"),
    ("zero-wait-text", {"strategy": "canary", "wait": "0s"}, InvalidInput,
     r"the wait must be longer than zero"),
    ("canary-infinite", {"strategy": "canary", "canary_size": float("inf")}, InvalidInput,
     r"canary size must be at most 100%, got inf%"),
    ("step-nan", {"strategy": "linear", "step_size": float("nan")}, InvalidInput,
     r"step size must be a percentage above 0% and at most 100%, got nan"),
    # One linear step of 100% is blue-green: its wait was dropped without a word, and with
    # no bake it completed once prepared, never watched.
    ("linear-100-wait", {"strategy": "linear", "step_size": 100, "wait": 5 * MIN},
     InvalidInput, r"a linear step of 100% shifts all the traffic at once: no step is held"),
    ("linear-100-no-bake", {"strategy": "linear", "step_size": 100, "bake": timedelta(0)},
     InvalidInput, r"a linear step of 100% .* needs a bake longer than zero"),
    ("canary-over-100", {"strategy": "canary", "canary_size": 150}, InvalidInput,
     r"canary size must be at most 100%"),
    ("canary-100", {"strategy": "canary", "canary_size": 100}, InvalidInput,
     r"leaves no second step"),
    ("short-max-duration", {"strategy": "canary", "wait": 10 * MIN, "bake": 10 * MIN,
                            "max_duration": 20 * MIN}, InvalidInput,
     r"maximum duration \(20m\) must be longer than the waits and the bake together \(20m\)"),
    ("unknown-alarm", {"strategy": "canary", "alarms": ["nope"]}, NotFound,
     r"alarm 'nope' does not exist"),
    ("unknown-strategy", {"strategy": "rolling"}, InvalidInput,
     r"unknown deployment strategy 'rolling'; choose one of all-at-once, canary"),
    ("step-for-canary", {"strategy": "canary", "step_size": 10}, InvalidInput,
     r"the canary strategy takes no step size"),
    ("wait-for-blue-green", {"strategy": "blue-green", "wait": MIN}, InvalidInput,
     r"the blue-green strategy takes no wait"),
    ("blue-green-no-bake", {"strategy": "blue-green", "bake": timedelta(0)}, InvalidInput,
     r"blue-green deployment needs a bake"),
    ("options-for-all-at-once", {"strategy": "all-at-once", "alarms": ["a"]}, InvalidInput,
     r"all-at-once update takes no canary"),
    ("min-requests-0", {"strategy": "canary", "min_requests": 0}, InvalidInput,
     r"minimum number of requests must be 1"),
    # From Python: text was a TypeError, True a canary of 1%, 2.5 and True minimums taken,
    # one alarm's name as text a list of one-letter alarms, a strategy not text an
    # AttributeError.
    ("canary-as-text", {"strategy": "canary", "canary_size": "10%"}, InvalidInput,
     r"the canary size must be a number of percent \(10 for 10%\), got str '10%'"),
    ("step-as-text", {"strategy": "linear", "step_size": "20"}, InvalidInput,
     r"the step size must be a number of percent"),
    ("canary-true", {"strategy": "canary", "canary_size": True}, InvalidInput,
     r"the canary size must be a number of percent \(10 for 10%\), got bool True"),
    ("min-requests-true", {"strategy": "canary", "min_requests": True}, InvalidInput,
     r"the minimum number of requests must be a whole number, got bool True"),
    ("min-requests-float", {"strategy": "canary", "min_requests": 2.5}, InvalidInput,
     r"must be a whole number, got float 2.5"),
    ("min-requests-text", {"strategy": "canary", "min_requests": "100"}, InvalidInput,
     r"must be a whole number, got str '100'"),
    ("alarms-as-text", {"strategy": "canary", "alarms": "p99-high"}, InvalidInput,
     r"the alarms must be a list of alarm names, such as \['p99-high'\], got str 'p99-high'"),
    ("alarms-none", {"strategy": "canary", "alarms": None}, InvalidInput,
     r"the alarms must be a list of alarm names"),
    ("strategy-none", {"strategy": None}, InvalidInput, r"unknown deployment strategy None"),
    ("strategy-number", {"strategy": 5}, InvalidInput, r"unknown deployment strategy 5"),
    ("unknown-weight", {"strategy": "canary", "weights": {"blue": 1.0}}, InvalidInput,
     r"weights name unknown variant blue"),
    ("zero-weights", {"strategy": "canary", "weights": {"main": 0.0}}, InvalidInput,
     r"at least one variant needs a weight above 0"),
    ("unknown-model", {"strategy": "canary", "variants": {"main": "nope:1"}}, NotFound,
     r"nope"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "error", "match"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_bad_deployment_is_refused_and_changes_nothing(
    parts: Parts, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    before = _state(parts)
    options = dict(options)  # shared by the backends' cases
    variants = options.pop("variants", {"main": "churn:2"})
    with pytest.raises(error, match=match):
        parts.service.start(ENDPOINT, variants, **options)
    assert _state(parts) == before


def test_a_second_deployment_is_refused_naming_the_running_one(parts: Parts) -> None:
    first = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary").deployment
    assert first is not None
    before = _state(parts)
    for strategy in ("linear", "all-at-once"):
        with pytest.raises(Conflict) as refused:
            parts.service.start(ENDPOINT, {"main": "churn:3"}, strategy=strategy)
        assert f"has deployment {first.id} running (canary, step 1 of 3: prepare)" in str(
            refused.value
        )
    assert _state(parts) == before


def test_an_alarm_already_in_alarm_is_refused(parts: Parts) -> None:
    parts.alarms.create(
        "busy", endpoint=ENDPOINT, metric="requests", comparison="<", threshold=1,
        window=MIN, missing="zero",
    )  # fmt: skip
    parts.alarms.evaluate(parts.clock.advance(2 * MIN))
    before = _state(parts)
    with pytest.raises(Conflict, match="alarm 'busy' is in ALARM now"):
        parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary", alarms=["busy"])
    assert _state(parts) == before


def test_a_rollback_with_no_previous_config_is_refused(parts: Parts) -> None:
    before = _state(parts)
    with pytest.raises(InvalidInput, match="has no earlier config to roll back to"):
        parts.service.rollback(ENDPOINT)
    assert _state(parts) == before


def test_steering_without_an_active_deployment_is_refused(parts: Parts) -> None:
    with pytest.raises(NotFound, match="endpoint 'churn-api' has no deployment") as none:
        parts.service.pause(ENDPOINT)
    assert not isinstance(none.value, EndpointNotFound)
    # A name no endpoint has is said so (a typo), not "has no deployment".
    for steer in (parts.service.pause, parts.service.resume, parts.service.get):
        with pytest.raises(EndpointNotFound, match="'churn-apy'"):
            steer("churn-apy")
    parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary")
    parts.service.stop(ENDPOINT)
    for steer in (parts.service.pause, parts.service.resume, parts.service.stop):
        with pytest.raises(Conflict, match=r"no active deployment \(its last, 1, STOPPED"):
            steer(ENDPOINT)


def test_a_deployment_id_no_row_can_have_is_not_found(parts: Parts) -> None:
    """An id past 64 bits once reached the database driver (OverflowError, a traceback)."""
    d = parts.service.start(ENDPOINT, {"main": "churn:2"}, strategy="canary").deployment
    assert d is not None and parts.service.get(ENDPOINT, d.id) == d
    for wrong in (2**63, 10**20, 0, -1):
        with pytest.raises(NotFound, match=f"no deployment {wrong}$"):
            parts.service.get(ENDPOINT, wrong)


@pytest.mark.parametrize(
    ("strategy", "options", "steps"),
    [
        ("canary", {}, ["prepare", "shift 10%", "bake 100%"]),
        ("canary", {"canary_size": 5, "bake": timedelta(0)}, ["prepare", "shift 5%"]),
        ("linear", {}, ["prepare", "shift 20%", "shift 40%", "shift 60%", "shift 80%",
                        "bake 100%"]),
        ("linear", {"step_size": 33.4}, ["prepare", "shift 33.3333%", "shift 66.6667%",
                                         "bake 100%"]),
        ("linear", {"step_size": 100}, ["prepare", "bake 100%"]),
        ("blue-green", {}, ["prepare", "bake 100%"]),
    ],
    ids=["canary", "canary-no-bake", "linear", "linear-thirds", "linear-100", "blue-green"],
)  # fmt: skip
def test_plans(strategy: str, options: dict[str, Any], steps: list[str]) -> None:
    plan = plan_rollout(strategy, **options)
    assert [s.label for s in plan.steps] == steps
    assert plan.strategy is Strategy(strategy)
    holds = {s.kind: s.hold for s in plan.steps}
    assert holds[StepKind.PREPARE] == timedelta(0)
    assert plan.max_duration == plan.total_hold + timedelta(hours=1)


def test_a_plan_of_many_steps_is_described_in_one_line() -> None:
    """A linear plan of 1% steps listed each of its 99 shifts in every start entry (2 KB)."""
    few = plan_rollout("linear", step_size=25, wait="5m", bake="10m")
    assert describe(few) == (
        "linear: 25% for 5m, then 50% for 5m, then 75% for 5m, then 100% baked 10m; at most 1h25m"
    )
    many = plan_rollout("linear", step_size=1, wait="1m", bake="10m", max_duration="3h")
    assert describe(many) == (
        "linear: 99 steps of 1% (1% to 99%) for 1m each, then 100% baked 10m; at most 3h"
    )


def test_durations_are_taken_as_the_cli_writes_them() -> None:
    """From Python as from the CLI: ``wait="90s"`` (it was a TypeError)."""
    plan = plan_rollout("canary", wait="90s", bake="0s", max_duration="1h")
    assert plan == plan_rollout(
        "canary", wait=timedelta(seconds=90), bake=timedelta(0), max_duration=timedelta(hours=1)
    )


def test_blends_keep_each_side_in_its_own_proportions() -> None:
    old = (Variant("blue", "m", 1, 3.0), Variant("green", "m", 2, 1.0))
    new = (Variant("blue", "m", 3, 1.0), Variant("blue.next", "m", 4, 1.0))
    names = served_names(old, new)
    assert names == {"blue": "blue.next2", "blue.next": "blue.next"}
    mixed = blend(old, new, names, 20)
    assert [(v.name, v.version, round(v.weight, 6)) for v in mixed] == [
        ("blue", 1, 0.6), ("green", 2, 0.2), ("blue.next2", 3, 0.1), ("blue.next", 4, 0.1),
    ]  # fmt: skip
