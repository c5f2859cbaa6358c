"""Two controllers on one PostgreSQL store (each with its own connections, in threads that start
each pass together) drive one deployment from start to end: every step's config is written
once, every step starts once, and each decision is logged once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from modelyard.domain.deployment_decisions import Action
from modelyard.domain.deployments import DeploymentState
from tests.services.deployment_parts import ENDPOINT, STEP, Parts, open_parts

MIN = timedelta(minutes=1)


@pytest.fixture
def pair(pg_url: str) -> Iterator[tuple[Parts, Parts]]:
    one = open_parts(pg_url)
    two = open_parts(pg_url, one.clock, seed=False)
    yield one, two
    one.close()
    two.close()


def test_two_controllers_apply_each_step_once(pair: tuple[Parts, Parts]) -> None:
    one, two = pair
    one.service.start(ENDPOINT, {"main": "churn:2"}, strategy="linear", step_size=25,
                      wait=2 * MIN, bake=2 * MIN, min_requests=10)  # fmt: skip
    controllers = [one.controller("one"), two.controller("two")]
    barrier = threading.Barrier(2)

    def run(index: int) -> list[Action]:
        barrier.wait()
        return [d.action for d in controllers[index].run_once(one.clock.now)]

    actions: list[Action] = []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(60):
            one.clock.advance(STEP + timedelta(seconds=25))
            minute = one.clock.now.replace(second=0, microsecond=0)
            for variant in ("main", "main.next"):
                one.serve(variant, minute, 50)
            for made in pool.map(run, range(2)):
                actions.extend(made)
            if one.service.get(ENDPOINT).state is not DeploymentState.RUNNING:
                break
    d = one.service.get(ENDPOINT)
    assert d.state is DeploymentState.SUCCEEDED, d.reason
    assert actions == [Action.ADVANCE] * 4 + [Action.COMPLETE]
    history = one.endpoints.history(ENDPOINT)
    assert [c.change.value for c in history] == [
        "create", "update", "weights", "weights", "weights", "weights", "update",
    ]  # fmt: skip
    assert [s.index for s in one.service.steps(d)] == [0, 1, 2, 3, 4]
    logged = [x.action for x in one.service.decisions(d)]
    assert logged == [Action.START] + [Action.ADVANCE] * 4 + [Action.COMPLETE]
    actors = {x.actor for x in one.service.decisions(d)[1:]}
    assert actors <= {"one", "two"}


class EveryoneHolds:
    """Leases that every contender gets: what is left are the compare-and-sets, which alone
    must keep a step from being applied twice."""

    def acquire(self, *_: object) -> bool:
        return True

    renew = finish = acquire

    def get(self, *_: object) -> None:
        return None


def test_without_leases_the_compare_and_sets_still_apply_each_step_once(
    pair: tuple[Parts, Parts],
) -> None:
    one, two = pair
    one.service.start(ENDPOINT, {"main": "churn:2"}, strategy="linear", step_size=50,
                      wait=MIN, bake=MIN, min_requests=10)  # fmt: skip
    controllers = [one.controller("one"), two.controller("two")]
    for c in controllers:
        c._leases = EveryoneHolds()  # type: ignore[assignment]
    barrier = threading.Barrier(2)

    def run(index: int) -> list[Action]:
        barrier.wait()
        return [d.action for d in controllers[index].run_once(one.clock.now)]

    actions: list[Action] = []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(40):
            one.clock.advance(timedelta(seconds=20))
            minute = one.clock.now.replace(second=0, microsecond=0)
            for variant in ("main", "main.next"):
                one.serve(variant, minute, 50)
            for made in pool.map(run, range(2)):
                actions.extend(made)
            if one.service.get(ENDPOINT).state is not DeploymentState.RUNNING:
                break
    d = one.service.get(ENDPOINT)
    assert d.state is DeploymentState.SUCCEEDED, d.reason
    assert sorted(actions) == sorted([Action.ADVANCE] * 2 + [Action.COMPLETE])
    assert [c.change.value for c in one.endpoints.history(ENDPOINT)] == [
        "create", "update", "weights", "weights", "update",
    ]  # fmt: skip
    assert [s.index for s in one.service.steps(d)] == [0, 1, 2]
    assert len(one.service.decisions(d)) == 4
