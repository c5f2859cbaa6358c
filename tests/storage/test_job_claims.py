"""A job's claim (a batch job's output location) is held by one active job at most, on every
backend: a second job is refused naming the holder, even when both are created at the same
moment; the claim is released by the holder's ending and taken back by its resumption."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from modelyard.domain import Job, JobKind, JobStatus
from modelyard.errors import Claimed
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


def job(name: str) -> Job:
    return Job(
        name=name, kind=JobKind.BATCH, model_name="churn", status=JobStatus.PENDING,
        spec={"output": "/out"}, hyperparameters={}, created_at=T0,
    )  # fmt: skip


def test_one_active_job_holds_a_claim(store: SqlJobStore) -> None:
    store.create_job(job("a"), claim="out")
    with pytest.raises(Claimed, match="'a'") as refused:
        store.create_job(job("b"), claim="out")
    assert refused.value.holder == "a"
    assert [j.name for j in store.list_jobs()] == ["a"]  # nothing of b was recorded
    store.create_job(job("c"), claim="elsewhere")  # another output: no conflict
    store.create_job(job("d"))  # no claim at all
    store.create_job(job("e"))
    # Every active state holds it; any end releases it.
    store.transition("a", (JobStatus.PENDING,), JobStatus.IN_PROGRESS)
    store.transition("a", (JobStatus.IN_PROGRESS,), JobStatus.STOPPING)
    with pytest.raises(Claimed):
        store.create_job(job("b"), claim="out")
    store.transition("a", (JobStatus.STOPPING,), JobStatus.STOPPED)
    store.create_job(job("b"), claim="out")
    # The first job resumed while the second holds it: refused, and it stays Stopped.
    with pytest.raises(Claimed, match="'b'"):
        store.transition("a", (JobStatus.STOPPED,), JobStatus.PENDING)
    assert store.get_job("a").status is JobStatus.STOPPED
    store.transition("b", (JobStatus.PENDING,), JobStatus.FAILED)
    assert store.transition("a", (JobStatus.STOPPED,), JobStatus.PENDING).status.value == "Pending"


def test_jobs_created_at_once_get_one_claim(store: SqlJobStore) -> None:
    contenders = 6
    start = threading.Barrier(contenders)
    won: list[str] = []
    refused: list[str] = []
    failed: list[BaseException] = []

    def contend(index: int) -> None:
        start.wait()
        try:
            won.append(store.create_job(job(f"j{index}"), claim="out").name)
        except Claimed as exc:
            refused.append(exc.holder)
        except BaseException as exc:  # reported below
            failed.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert len(won) == 1 and refused == won * (contenders - 1)
