"""The job service's shared lifecycle: the kind table, resume's refusals, and the real worker
processes it starts and watches (``modelyard.processes``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelyard import processes
from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Job, JobKind, JobStatus
from modelyard.errors import Conflict, InvalidInput, JobNotFound
from modelyard.services.jobs import PENDING_GRACE_S, JobKindRunner, failure_of


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home"))
    yield p
    p.close()


def _until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _job(platform: Platform, name: str, kind: JobKind, status: JobStatus) -> Job:
    job = Job(
        name=name,
        kind=kind,
        model_name="m",
        status=JobStatus.PENDING,
        spec={},
        hyperparameters={},
        created_at=datetime.now(UTC),
    )
    platform.jobs.store.create_job(job)
    if status is not JobStatus.PENDING:
        return platform.jobs.store.transition(name, (JobStatus.PENDING,), status)
    return job


def test_run_dispatches_on_the_kind_table(platform: Platform) -> None:
    seen: list[str] = []

    def run(name: str, stop: threading.Event) -> Job:
        seen.append(name)
        return platform.jobs.store.get_job(name)

    _job(platform, "t1", JobKind.TRAINING, JobStatus.PENDING)
    platform.jobs.register(JobKind.TRAINING, JobKindRunner(run))
    assert platform.jobs.run("t1", threading.Event()).name == "t1"
    assert seen == ["t1"]


def test_run_refuses_a_kind_nobody_registered(tmp_path: Path) -> None:
    from modelyard.services.jobs import JobService
    from modelyard.storage.artifacts import FsspecArtifactStore

    p = build(load_settings({}, home=tmp_path / "home"))
    try:
        bare = JobService(
            p.jobs.store,
            FsspecArtifactStore(str(tmp_path / "art")),
            tmp_path / "logs",
            processes.LocalProcesses(tmp_path / "logs", os.environ),
            host="h",
        )
        _job(p, "b1", JobKind.BATCH, JobStatus.PENDING)
        with pytest.raises(InvalidInput, match="batch"):
            bare.run("b1", threading.Event())
    finally:
        p.close()


def test_resume_refuses_what_cannot_resume(platform: Platform) -> None:
    _job(platform, "train-failed", JobKind.TRAINING, JobStatus.FAILED)
    with pytest.raises(InvalidInput, match="training job, which cannot be resumed"):
        platform.jobs.resume("train-failed")
    _job(platform, "batch-running", JobKind.BATCH, JobStatus.IN_PROGRESS)
    with pytest.raises(Conflict, match="only a Failed or Stopped job can resume"):
        platform.jobs.resume("batch-running")
    _job(platform, "batch-done", JobKind.BATCH, JobStatus.COMPLETED)
    with pytest.raises(Conflict, match="Completed"):
        platform.jobs.resume("batch-done")
    with pytest.raises(JobNotFound):
        platform.jobs.resume("no-such-job")
    # Nothing changed.
    assert platform.jobs.store.get_job("train-failed").status is JobStatus.FAILED
    assert platform.jobs.store.get_job("batch-done").status is JobStatus.COMPLETED


def test_a_dead_worker_fails_its_job_and_a_stop_confirms(platform: Platform) -> None:
    _job(platform, "dead", JobKind.BATCH, JobStatus.PENDING)
    proc = processes.spawn_worker(["two", "args"], platform.jobs.log_path("dead"), os.environ)
    platform.jobs.store.transition(
        "dead", (JobStatus.PENDING,), JobStatus.PENDING, pid=proc, host=platform.jobs.host
    )
    _until(lambda: platform.jobs.get("dead").status.finished, "the dead worker to be noticed")
    failed = platform.jobs.get("dead")
    assert failed.status is JobStatus.FAILED
    assert f"pid {proc}" in (failed.failure_reason or "")
    assert "usage: python -m modelyard.worker" in (failed.failure_reason or "")
    error = failure_of(failed)
    assert error is not None and error.message.startswith("batch job dead failed")


def test_stop_signals_a_live_process_and_the_job_ends_stopped(platform: Platform) -> None:
    _job(platform, "sleeper", JobKind.BATCH, JobStatus.PENDING)
    pid = os.posix_spawn(
        sys.executable, [sys.executable, "-c", "import time; time.sleep(120)"], dict(os.environ)
    )
    platform.jobs.store.transition(
        "sleeper", (JobStatus.PENDING,), JobStatus.IN_PROGRESS, pid=pid, host=platform.jobs.host
    )
    assert platform.jobs.stop("sleeper").status is JobStatus.STOPPING
    _until(lambda: not processes.alive(pid), "the process to end on SIGTERM")
    ended = platform.jobs.wait("sleeper", timeout_s=60, poll_s=0.05)
    assert ended.status is JobStatus.STOPPED
    with pytest.raises(Conflict, match="already ended"):
        platform.jobs.stop("sleeper")


def test_terminate_all_kills_what_ignores_sigterm() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(120)"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        processes.terminate_all([proc.pid], grace_s=0.5)
        assert not processes.alive(proc.pid)
        assert proc.wait(timeout=10) == 0  # already reaped by terminate_all: nothing to collect


def test_terminate_all_calls_back_while_it_waits() -> None:
    """A coordinator stopping its runners beats meanwhile: the grace period (a minute) is as
    long as the silence that reads as a death on another machine."""
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(120)"
    )
    beats: list[bool] = []
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        processes.terminate_all([proc.pid], grace_s=2.5, while_waiting=lambda: beats.append(True))
        assert not processes.alive(proc.pid)
    assert len(beats) >= 2  # at the start, then about once a second until the grace ends


class _Recording:
    """A launcher that records what it was asked to start (nothing starts)."""

    def __init__(self) -> None:
        self.launched: list[list[str]] = []

    def launch(self, args: list[str], log_name: str) -> int:
        self.launched.append(list(args))
        return 999_999

    def alive(self, pid: int) -> bool:
        return False

    def stop(self, pid: int) -> None:
        return None

    def reap(self, pid: int) -> None:
        return None


def test_launch_passes_the_kinds_worker_options_before_the_job(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = _Recording()
    monkeypatch.setattr(platform.jobs, "_processes", recording)
    platform.jobs.register(
        JobKind.TRAINING, JobKindRunner(lambda n, s: platform.jobs.get(n), worker_args=None)
    )
    platform.jobs.register(
        JobKind.BATCH,
        JobKindRunner(lambda n, s: platform.jobs.get(n), worker_args=lambda j: ["--x", j.name]),
    )
    platform.jobs.launch(_job(platform, "plain", JobKind.TRAINING, JobStatus.PENDING))
    platform.jobs.launch(_job(platform, "opts", JobKind.BATCH, JobStatus.PENDING))
    assert recording.launched == [["plain"], ["--x", "opts", "opts"]]


def test_a_kind_whose_worker_options_fail_ends_its_job_failed(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(job: Job) -> list[str]:
        raise InvalidInput("no options for you")

    monkeypatch.setattr(platform.jobs, "_processes", _Recording())
    platform.jobs.register(
        JobKind.BATCH, JobKindRunner(lambda n, s: platform.jobs.get(n), worker_args=broken)
    )
    ended = platform.jobs.launch(_job(platform, "broken", JobKind.BATCH, JobStatus.PENDING))
    assert ended.status is JobStatus.FAILED
    assert "no options for you" in (ended.failure_reason or "")


@pytest.mark.parametrize(
    ("spec", "helpers"),
    [
        ({"workers": 2}, lambda cores: min(2, cores) - 1),
        ({"workers": 1}, lambda cores: 0),
        ({"workers": 64}, lambda cores: cores - 1),  # capped at one per core
        ({}, lambda cores: cores - 1),
        ({"workers": 2, "executor": "ray"}, lambda cores: 0),
    ],
)
def test_batch_jobs_prestart_their_other_workers(
    platform: Platform, spec: dict[str, object], helpers: Callable[[int], int]
) -> None:
    from modelyard.batch.spawn import default_workers

    job = _job(platform, "b", JobKind.BATCH, JobStatus.PENDING)
    request = {"model": "m:1", "input": "/in", "output": "/out", **spec}
    options = platform.batch.runner().worker_args
    assert options is not None
    count = helpers(default_workers())
    expected = ["--prestart", f"modelyard.batch.spawn:{count}"] if count > 0 else []
    assert options(replace(job, spec=request)) == expected


def test_job_names_fit_in_128_characters_whatever_the_model_name() -> None:
    """A model name may be 128 characters; its batch job's name once came out longer, and
    the job's output folder refused it."""
    import re

    from modelyard.batch.location import Location
    from modelyard.batch.manifest import Manifest
    from modelyard.domain.references import validate_name
    from modelyard.services.jobs import job_name

    for length in (1, 101, 102, 128):
        model = "m" * length
        for kind in ("", "batch", "tune"):
            name = job_name(model, kind)
            assert len(name) <= 128 and validate_name(name, "job name") == name
            assert re.fullmatch(
                rf"m+{'-' + kind if kind else ''}-\d{{8}}-\d{{6}}-[0-9a-f]{{4}}", name
            )
            Manifest(Location("/tmp/unused"), name)  # refused names raise here
    assert job_name("churn", "batch").startswith("churn-batch-")


def test_a_job_left_pending_without_a_worker_ends_after_its_grace(platform: Platform) -> None:
    # Its submitter died between recording it and starting its worker: it held its claim
    # (a batch output) forever.
    long_ago = datetime.now(UTC) - timedelta(seconds=PENDING_GRACE_S + 60)
    fresh = Job(
        name="fresh", kind=JobKind.BATCH, model_name="m", status=JobStatus.PENDING, spec={},
        hyperparameters={}, created_at=datetime.now(UTC),
    )  # fmt: skip
    platform.jobs.store.create_job(fresh, claim="out-a")
    orphaned = replace(fresh, name="orphan", created_at=long_ago)
    platform.jobs.store.create_job(orphaned, claim="out-b")
    assert platform.jobs.get("fresh").status is JobStatus.PENDING  # still in its grace
    orphan = platform.jobs.get("orphan")
    assert orphan.status is JobStatus.FAILED
    assert "no worker process started" in (orphan.failure_reason or "")
    platform.jobs.store.create_job(replace(fresh, name="next"), claim="out-b")  # free again


def test_a_resumed_job_is_not_taken_for_an_orphan_while_it_launches(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Resumed, a job created long ago is Pending without a pid until its worker starts; a
    # reconcile in that moment (another process reading it) must not end it.
    long_ago = datetime.now(UTC) - timedelta(seconds=PENDING_GRACE_S + 60)
    old = Job(
        name="old", kind=JobKind.BATCH, model_name="m", status=JobStatus.PENDING, spec={},
        hyperparameters={}, created_at=long_ago,
    )  # fmt: skip
    platform.jobs.store.create_job(old, claim="out")
    platform.jobs.store.transition("old", (JobStatus.PENDING,), JobStatus.FAILED)
    seen: list[JobStatus] = []

    class Looking(_Recording):
        def launch(self, args: list[str], log_name: str) -> int:
            seen.append(platform.jobs.get("old").status)
            return super().launch(args, log_name)

    monkeypatch.setattr(platform.jobs, "_processes", Looking())
    platform.jobs.register(
        JobKind.BATCH, JobKindRunner(lambda n, s: platform.jobs.get(n), resume=lambda j: None)
    )
    resumed = platform.jobs.resume("old")
    assert seen == [JobStatus.PENDING]
    assert resumed.status is JobStatus.PENDING and resumed.pid == 999_999


@pytest.mark.parametrize("taken_to", [JobStatus.IN_PROGRESS, JobStatus.COMPLETED])
def test_a_worker_quicker_than_its_launcher_keeps_the_job(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, taken_to: JobStatus
) -> None:
    """A worker forked from a preloaded coordinator can take its job (Pending to In
    progress, its own pid recorded) before the launcher records the pid it was given; the
    launch failed with "job 'plain' is InProgress; it cannot become Pending" (seen in CI, a
    SageMaker-SDK fit on PostgreSQL), though the job ran. The launch now returns the job as
    its worker left it."""

    class Quick(_Recording):
        def launch(self, args: list[str], log_name: str) -> int:
            platform.jobs.store.transition(
                "plain", (JobStatus.PENDING,), JobStatus.IN_PROGRESS, pid=4242, host="worker"
            )
            if taken_to is JobStatus.COMPLETED:
                platform.jobs.store.transition(
                    "plain", (JobStatus.IN_PROGRESS,), JobStatus.COMPLETED
                )
            return super().launch(args, log_name)

    monkeypatch.setattr(platform.jobs, "_processes", Quick())
    platform.jobs.register(
        JobKind.TRAINING, JobKindRunner(lambda n, s: platform.jobs.get(n), worker_args=None)
    )
    launched = platform.jobs.launch(_job(platform, "plain", JobKind.TRAINING, JobStatus.PENDING))
    assert (launched.status, launched.pid, launched.host) == (taken_to, 4242, "worker")
    assert platform.jobs.get("plain") == launched
