"""The deployment store's contract, on SQLite and PostgreSQL: records round-trip; one active
deployment per endpoint, even against concurrent starts (the refusal names the running one);
every change is a compare-and-set on the version; a step starts once; the decision log keeps
its order; a discarded start leaves nothing."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelyard.domain import Variant
from modelyard.domain.deployment_decisions import Action, Check, Decision, Pending, Verdict
from modelyard.domain.deployments import (
    Deployment,
    DeploymentState,
    StepKind,
    StepRecord,
)
from modelyard.errors import Conflict, NotFound
from modelyard.services.deployment_plan import plan_rollout
from modelyard.storage.sql.deployment_store import SqlDeploymentStore
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlDeploymentStore]:
    engine = make_engine(db_url)
    SqlMetadataStore(engine)  # the schema
    yield SqlDeploymentStore(engine)
    engine.dispose()


def _new(endpoint: str = "churn-api") -> Deployment:
    start = Decision(T0, 0, Action.START, "started", "user")
    return Deployment(
        id=0,
        endpoint=endpoint,
        plan=plan_rollout("linear", step_size=50, alarms=["p99-high"]),
        source_config=1,
        target=(Variant("main", "churn", 2, 1.0, requested="churn@production"),),
        served_names={"main": "main.next"},
        state=DeploymentState.RUNNING,
        step=0,
        config=None,
        pending=Pending(start, 0, 1),
        reason="starting",
        started_at=T0,
        updated_at=T0,
        step_started_at=T0,
    )


def test_records_round_trip(store: SqlDeploymentStore) -> None:
    created = store.create(_new())
    assert created.id > 0 and created.version == 1
    assert dataclasses.replace(created, id=0, version=0) == _new()
    assert store.get(created.id) == created == store.latest("churn-api")
    assert store.latest("other") is None and store.active() == [created]
    with pytest.raises(NotFound, match="no deployment 999"):
        store.get(999)


def test_one_active_deployment_per_endpoint(store: SqlDeploymentStore) -> None:
    first = store.create(_new())
    other = store.create(_new("other-api"))
    with pytest.raises(Conflict) as refused:
        store.create(_new())
    assert f"endpoint 'churn-api' has deployment {first.id} running (linear" in str(refused.value)
    ended = store.save(dataclasses.replace(first, state=DeploymentState.STOPPED, ended_at=T0))
    assert [d.id for d in store.active()] == [other.id]
    second = store.create(_new())
    assert [d.id for d in store.list_deployments("churn-api")] == [second.id, ended.id]
    assert [d.id for d in store.list_deployments()] == [second.id, other.id, first.id]


def test_concurrent_starts_let_one_in(store: SqlDeploymentStore) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def start() -> None:
        barrier.wait()
        try:
            outcomes.append(store.create(_new()).id)
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if isinstance(o, int)]
    assert len(won) == 1 and len(store.active()) == 1
    for lost in (o for o in outcomes if isinstance(o, Conflict)):
        assert f"has deployment {won[0]} running" in str(lost)


def test_changes_are_compare_and_sets_with_steps_and_decisions(
    store: SqlDeploymentStore,
) -> None:
    d = store.create(_new())
    at = T0 + timedelta(seconds=5)
    check = Check("servers", Verdict.PASS, "all 1 live servers loaded config 2", {"live": 1})
    decision = Decision(at, 0, Action.START, "started", "vm:1", T0, at, (check,))
    step = StepRecord(0, StepKind.PREPARE, 0.0, 2, at)
    moved = store.save(
        dataclasses.replace(d, pending=None, config=2), decision=decision, start_step=step
    )
    assert (moved.version, moved.config, moved.pending) == (2, 2, None)
    with pytest.raises(Conflict, match="changed meanwhile"):
        store.save(dataclasses.replace(d, reason="stale"))  # version 1 is gone
    with pytest.raises(Conflict, match=r"step 1 of deployment .* started already"):
        store.save(moved, start_step=step)
    assert store.get(d.id) == moved, "a refused save changed nothing"
    later = T0 + timedelta(minutes=5)
    advance = Decision(later, 0, Action.ADVANCE, "passed", "vm:1")
    store.save(
        dataclasses.replace(moved, step=1),
        decision=advance,
        start_step=StepRecord(1, StepKind.SHIFT, 50.0, 3, later),
        end_step=(0, "passed", later),
    )
    steps = store.steps(d.id)
    assert [(s.index, s.config, s.outcome, s.ended_at) for s in steps] == [
        (0, 2, "passed", later),
        (1, 3, None, None),
    ]
    logged = store.decisions(d.id)
    assert [(x.action, x.reason) for x in logged] == [
        (Action.START, "started"),
        (Action.ADVANCE, "passed"),
    ]
    assert dataclasses.replace(logged[0], id=0, deployment=0) == decision
    assert logged[0].deployment == d.id
    assert [x.action for x in store.decisions(d.id, limit=1)] == [Action.ADVANCE]


def test_a_discarded_start_leaves_nothing(store: SqlDeploymentStore) -> None:
    d = store.create(_new())
    store.discard(d.id)
    assert store.list_deployments() == [] and store.steps(d.id) == []
    assert store.create(_new()).state is DeploymentState.RUNNING
