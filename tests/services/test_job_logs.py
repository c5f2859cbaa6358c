"""Job logs in the training service: capped by the settings, kept once, even when the worker
is killed mid-flood."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import JobStatus
from modelyard.errors import InvalidInput, JobNotFound
from modelyard.training.joblog import LogLimits

HEAD, TAIL = 20_000, 200_000
# ~12 MB, then it waits to be killed.
FLOOD_THEN_HANG = """
import sys, time
print("first words", flush=True)
for i in range(12):
    sys.stdout.write(f"{i:02d}" + "x" * 1_000_000 + "\\n")
print("now waiting", flush=True)
time.sleep(120)
"""


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    p = build(
        load_settings(
            {},
            home=tmp_path / "home",
            db_url=db_url,
            job_log_head_bytes=HEAD,
            job_log_tail_bytes=TAIL,
        )
    )
    yield p
    p.close()


def _until(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_killed_workers_log_is_capped_and_kept_once(platform: Platform, tmp_path: Path) -> None:
    script = tmp_path / "flood.py"
    script.write_text(FLOOD_THEN_HANG)
    train = tmp_path / "train.csv"
    train.write_text("a,b\n1,2\n")
    job = platform.training.submit("m", script=str(script), train=str(train))
    live = platform.jobs.log_path(job.name)
    _until(
        lambda: "now waiting" in "".join(platform.jobs.read_log(job.name, tail=1)),
        "the flood to end",
    )
    # The worker's settings came through its environment: the live log holds to them.
    limits = LogLimits(HEAD, TAIL)
    assert live.stat().st_size <= limits.live_bytes
    running = platform.jobs.get(job.name)
    assert running.pid is not None
    os.killpg(running.pid, signal.SIGKILL)  # the worker and its script, with no goodbye

    _until(lambda: platform.jobs.get(job.name).status.finished, "the job to be failed")
    failed = platform.jobs.get(job.name)
    assert failed.status is JobStatus.FAILED and failed.log_digest
    assert not live.exists()  # kept once: in the store
    kept = platform.artifacts.get_bytes(failed.log_digest)
    assert len(kept) <= limits.kept_bytes
    text = kept.decode()
    assert text.startswith(f"job {job.name}: training model 'm'\nfirst words\n")
    assert text.endswith("x\nnow waiting\n") and "cut here" in text
    assert platform.jobs.logs(job.name) == text
    # The reason quotes the log's last lines, each cut short: not megabytes in the database.
    reason = failed.failure_reason or ""
    assert "ended without finishing" in reason and "now waiting" in reason
    assert len(reason) < 30_000


def test_reading_a_log_checks_its_arguments(platform: Platform) -> None:
    with pytest.raises(JobNotFound):
        platform.jobs.read_log("no-such-job", tail=3)
    with pytest.raises(JobNotFound):
        platform.jobs.follow_log("no-such-job")
    with pytest.raises(InvalidInput, match="0 or more"):
        platform.jobs.read_log("no-such-job", tail=-1)
    with pytest.raises(InvalidInput, match="not both"):
        platform.jobs.read_log("no-such-job", head=1, tail=1)


def test_ending_a_job_removes_its_live_log_only_once_the_record_points_at_the_stored_one(
    platform: Platform,
) -> None:
    """Found in review: the live log was deleted before the job's record named its stored
    copy, so a reader in between saw no log, and a failed transition lost it."""
    from datetime import UTC, datetime

    from modelyard.domain import Job, JobKind
    from modelyard.errors import Conflict

    training = platform.jobs
    for name in ("waiting", "running"):
        job = Job(
            name=name,
            kind=JobKind.TRAINING,
            model_name="m",
            status=JobStatus.PENDING,
            spec={},
            hyperparameters={},
            created_at=datetime.now(UTC),
        )
        training.store.create_job(job)
        training.log_path(name).parent.mkdir(parents=True, exist_ok=True)
        training.log_path(name).write_text(f"the log of {name}\n")
    training.store.transition("running", (JobStatus.PENDING,), JobStatus.IN_PROGRESS)
    active = (JobStatus.IN_PROGRESS, JobStatus.STOPPING)
    with pytest.raises(Conflict):  # not in progress: its state is not changed, nor its log
        training.end_job("waiting", active, JobStatus.FAILED, training.log_path("waiting"))
    assert training.log_path("waiting").read_text() == "the log of waiting\n"

    ended = training.end_job("running", active, JobStatus.FAILED, training.log_path("running"),
                             failure_reason="test")  # fmt: skip
    assert ended.log_digest is not None and not training.log_path("running").exists()
    assert "".join(training.read_log("running")) == "the log of running\n"
