"""A job whose worker runs on another machine is judged by its heartbeat, on SQLite and
PostgreSQL: silent for ``stale_s`` by the store's clock, it is dead (its host stopped
reporting), ends Failed — or Stopped, if it was asked to stop — and releases what it
claimed; ``jobs stop`` ends it at once, as nobody can signal its worker. A job that still
reports is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Job, JobKind, JobStatus
from modelyard.errors import Claimed
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore

ELSEWHERE = "a-machine-that-died"
PID = 4242


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    engine = make_engine(db_url)
    SqlMetadataStore(engine)  # migrates
    engine.dispose()
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
    yield p
    p.close()


def _remote(
    platform: Platform, name: str, status: JobStatus, silent_s: float, claim: str | None = None
) -> Job:
    """A job whose worker runs on another host, last heard of ``silent_s`` ago."""
    store = platform.jobs.store
    job = Job(
        name=name, kind=JobKind.BATCH, model_name="m", status=JobStatus.PENDING, spec={},
        hyperparameters={}, created_at=datetime.now(UTC),
    )  # fmt: skip
    store.create_job(job, claim=claim)
    last = store.clock() - timedelta(seconds=silent_s)
    store.transition(
        name, (JobStatus.PENDING,), JobStatus.IN_PROGRESS, pid=PID, host=ELSEWHERE,
        started_at=last, heartbeat_at=last,
    )  # fmt: skip
    if status is JobStatus.STOPPING:
        store.transition(name, (JobStatus.IN_PROGRESS,), JobStatus.STOPPING)
    return store.get_job(name)


def test_a_job_whose_host_stopped_reporting_ends_and_frees_its_claim(
    platform: Platform,
) -> None:
    stale = platform.jobs.stale_s
    _remote(platform, "dead", JobStatus.IN_PROGRESS, stale + 600, claim="out")
    _remote(platform, "alive", JobStatus.IN_PROGRESS, 0, claim="elsewhere")
    # The next job on the same output is not refused: its holder is found dead.
    new = Job(
        name="next", kind=JobKind.BATCH, model_name="m", status=JobStatus.PENDING, spec={},
        hyperparameters={}, created_at=datetime.now(UTC),
    )  # fmt: skip
    platform.jobs.claiming(lambda: platform.jobs.store.create_job(new, claim="out"))
    dead = platform.jobs.store.get_job("dead")
    assert dead.status is JobStatus.FAILED
    reason = dead.failure_reason or ""
    assert f"its worker on {ELSEWHERE} (pid {PID}) has not reported for" in reason, reason
    # One that reports is left running, and keeps its claim.
    assert platform.jobs.get("alive").status is JobStatus.IN_PROGRESS
    other = replace(new, name="other")
    with pytest.raises(Claimed, match="alive"):
        platform.jobs.claiming(lambda: platform.jobs.store.create_job(other, claim="elsewhere"))


def test_a_stopping_job_whose_host_stopped_reporting_ends_stopped(platform: Platform) -> None:
    # Asked to stop from here, its worker elsewhere never confirmed: it held its claim forever.
    _remote(platform, "stuck", JobStatus.STOPPING, platform.jobs.stale_s + 600, claim="out")
    stopped = platform.jobs.get("stuck")
    assert stopped.status is JobStatus.STOPPED
    assert [j.name for j in platform.jobs.list_jobs()] == ["stuck"]


def test_stop_ends_at_once_a_job_whose_worker_cannot_be_signalled(platform: Platform) -> None:
    _remote(platform, "gone", JobStatus.IN_PROGRESS, platform.jobs.stale_s + 600)
    _remote(platform, "far", JobStatus.IN_PROGRESS, 0)
    gone = platform.jobs.stop("gone")
    assert gone.status is JobStatus.STOPPED
    assert (gone.failure_reason or "").startswith(f"stopped by request; its worker on {ELSEWHERE}")
    # A worker elsewhere that still reports is asked (Stopping) and left to confirm.
    assert platform.jobs.stop("far").status is JobStatus.STOPPING
    assert platform.jobs.get("far").status is JobStatus.STOPPING


def test_heartbeats_are_stamped_by_the_store_clock_on_a_shared_database(
    platform: Platform, db_url: str
) -> None:
    # A worker whose clock is a day behind must not look a day silent to another machine.
    store = platform.jobs.store
    _remote(platform, "skewed", JobStatus.IN_PROGRESS, 0)
    store.heartbeat(["skewed"], datetime.now(UTC) - timedelta(days=1))
    if db_url.startswith("postgresql"):
        assert platform.jobs.get("skewed").status is JobStatus.IN_PROGRESS
        beat = store.get_job("skewed").heartbeat_at
        assert beat is not None and abs((store.clock() - beat).total_seconds()) < 3600
    else:  # one machine's file: its clock is everybody's, and the stamp is kept as given
        assert platform.jobs.get("skewed").status is JobStatus.FAILED
