"""The JobStore contract on every backend: creation, listing, compare-and-set transitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelyard.domain import Job, JobKind, JobStatus
from modelyard.errors import AlreadyExists, Conflict, InvalidInput, JobNotFound
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.job_store import SqlJobStore
from modelyard.storage.sql.store import SqlMetadataStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlJobStore]:
    engine = make_engine(db_url)
    SqlMetadataStore(engine)  # migrates
    yield SqlJobStore(engine)
    engine.dispose()


def job(name: str, model: str = "churn", minutes: int = 0) -> Job:
    return Job(
        name=name,
        kind=JobKind.TRAINING,
        model_name=model,
        status=JobStatus.PENDING,
        spec={"algorithm": "xgboost", "train": "/data/train.csv"},
        hyperparameters={"max_depth": "4"},
        created_at=T0 + timedelta(minutes=minutes),
    )


def test_create_get_list(store: SqlJobStore) -> None:
    created = store.create_job(job("a", minutes=0))
    store.create_job(job("b", minutes=1))
    store.create_job(job("c", model="other", minutes=2))
    assert created.status is JobStatus.PENDING and created.spec["algorithm"] == "xgboost"
    assert store.get_job("a") == created
    assert [j.name for j in store.list_jobs()] == ["c", "b", "a"]
    assert [j.name for j in store.list_jobs(model_name="churn", limit=1)] == ["b"]
    with pytest.raises(AlreadyExists):
        store.create_job(job("a"))
    with pytest.raises(JobNotFound):
        store.get_job("nope")


def test_transitions_are_compare_and_set(store: SqlJobStore) -> None:
    store.create_job(job("a"))
    running = store.transition(
        "a", (JobStatus.PENDING,), JobStatus.IN_PROGRESS, pid=123, host="h", started_at=T0
    )
    assert (running.status, running.pid, running.host) == (JobStatus.IN_PROGRESS, 123, "h")
    done = store.transition(
        "a",
        (JobStatus.IN_PROGRESS,),
        JobStatus.COMPLETED,
        metrics={"validation:auc": 0.97},
        model_version=3,
        ended_at=T0 + timedelta(seconds=42),
    )
    assert done.metrics == {"validation:auc": 0.97} and done.duration_s == 42
    with pytest.raises(Conflict, match="Completed"):
        store.transition("a", (JobStatus.IN_PROGRESS,), JobStatus.STOPPED)
    assert store.get_job("a").status is JobStatus.COMPLETED
    with pytest.raises(JobNotFound):
        store.transition("nope", (JobStatus.PENDING,), JobStatus.FAILED)
    with pytest.raises(InvalidInput, match="status"):
        store.transition("a", (JobStatus.COMPLETED,), JobStatus.FAILED, status="x")


def test_a_failure_reason_quoting_a_nul_still_ends_the_job(store: SqlJobStore) -> None:
    """Found in review: a job whose output held a NUL could not be marked Failed on
    PostgreSQL (text refuses NUL), and stayed in progress for ever."""
    store.create_job(job("a"))
    failed = store.transition("a", (JobStatus.PENDING,), JobStatus.FAILED,
                              failure_reason="the script said \x00 and died")  # fmt: skip
    assert failed.status is JobStatus.FAILED
    assert store.get_job("a").failure_reason == "the script said \ufffd and died"
