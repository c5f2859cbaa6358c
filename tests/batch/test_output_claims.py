"""A batch job claims its output for its life: a second job writing the same output while the
first is active is refused at submission, naming the first, and nothing of the first's output
is lost; the claim ends with the job (a worker killed included, once reconciled), and jobs
with distinct outputs still run side by side."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Job, JobKind, JobStatus
from modelyard.domain.batch import BatchStrategy, TransformRequest
from modelyard.errors import Claimed
from modelyard.processes import LocalProcesses, alive
from tests.batch.support import Model, csv_text, features, request
from tests.waiting import wait_for

ROWS = features(3000, seed=11)


def _slow(model: Model, source: Path, output: Path | str, **kwargs: Any) -> TransformRequest:
    # One model call per record: the job is active for seconds after its submission.
    return request(model, source, output, batch_strategy=BatchStrategy.SINGLE_RECORD, **kwargs)


def _inputs(tmp_path: Path, files: int = 2) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(files):
        (folder / f"part-{index}.csv").write_bytes(csv_text(ROWS))
    return folder


def _batch_jobs(platform: Platform) -> set[str]:
    return {j.name for j in platform.jobs.list_jobs(kind=JobKind.BATCH, limit=1000)}


def test_a_second_job_on_an_active_jobs_output_is_refused(
    model: Model, platform: Platform, tmp_path: Path
) -> None:
    source = _inputs(tmp_path)
    out = tmp_path / "out"
    first = platform.batch.submit(_slow(model, source, out))
    before = _batch_jobs(platform)
    # However the output is spelled, and even when overwriting is allowed.
    for spelled in (out, f"file://{out}", f"{tmp_path}/in/../out/"):
        with pytest.raises(Claimed, match=first.name) as refused:
            platform.batch.submit(request(model, source, spelled, overwrite=True))
        assert refused.value.holder == first.name
    assert "still active" in str(refused.value) and str(out) in str(refused.value)
    assert _batch_jobs(platform) == before  # no job recorded for the refused ones
    done = platform.jobs.wait(first.name, timeout_s=300)
    assert done.status is JobStatus.COMPLETED, done.failure_reason
    for index in range(2):
        got = (out / f"part-{index}.csv.out").read_bytes()
        assert got == model.csv(ROWS)
    # Ended, the claim is free: the next job may replace the outputs it was told to.
    again = platform.batch.submit(request(model, source, out, overwrite=True))
    assert platform.jobs.wait(again.name, timeout_s=300).status is JobStatus.COMPLETED


def test_distinct_outputs_run_side_by_side(
    model: Model, platform: Platform, tmp_path: Path
) -> None:
    source = _inputs(tmp_path, files=1)
    jobs = [platform.batch.submit(_slow(model, source, tmp_path / f"out-{i}")) for i in range(2)]
    assert all(not j.status.finished for j in jobs)
    for job in jobs:
        assert platform.jobs.wait(job.name, timeout_s=300).status is JobStatus.COMPLETED
    for index in range(2):
        got = (tmp_path / f"out-{index}" / "part-0.csv.out").read_bytes()
        assert got == model.csv(ROWS)


def test_a_dead_jobs_claim_is_released_and_its_resumption_waits_its_turn(
    model: Model, platform: Platform, tmp_path: Path
) -> None:
    source = _inputs(tmp_path)
    out = tmp_path / "out"
    first = platform.batch.submit(_slow(model, source, out, workers=1))
    running = wait_for(
        "the first job's worker to run",
        lambda: platform.jobs.get(first.name),
        lambda job: job.status is JobStatus.IN_PROGRESS and job.pid is not None,
        timeout=300,
    )
    os.killpg(running.pid, signal.SIGKILL)  # the worker and all it started
    wait_for(
        "the dead job to be reconciled",
        lambda: platform.jobs.get(first.name).status,
        lambda status: status.finished,
        timeout=300,
    )
    second = platform.batch.submit(request(model, source, out, overwrite=True))
    with pytest.raises(Claimed, match=second.name):
        platform.jobs.resume(first.name)
    assert platform.jobs.get(first.name).status is JobStatus.FAILED
    assert platform.jobs.wait(second.name, timeout_s=300).status is JobStatus.COMPLETED
    for index in range(2):
        assert (out / f"part-{index}.csv.out").read_bytes() == model.csv(ROWS)
    np.testing.assert_equal(len(list(out.glob("*.out"))), 2)


def _killed_while_running(platform: Platform, submitted: str) -> int:
    """Kill a job's worker (and all it started) once it runs, and wait for the processes to be
    gone, without reading the job through the service (which would notice the death)."""
    running = wait_for(
        "the job's worker to run",
        lambda: platform.jobs.store.get_job(submitted),
        lambda job: job.status is JobStatus.IN_PROGRESS and job.pid is not None,
        timeout=300,
    )
    assert running.pid is not None
    os.killpg(running.pid, signal.SIGKILL)
    wait_for("the killed worker to be gone", lambda: alive(running.pid), lambda a: not a)
    assert platform.jobs.store.get_job(submitted).status is JobStatus.IN_PROGRESS
    return running.pid


def test_a_dead_jobs_claim_is_taken_at_once_by_a_new_job(
    model: Model, platform: Platform, tmp_path: Path
) -> None:
    # Nobody looked at the dead job before the next submission: the submission does.
    source = _inputs(tmp_path)
    out = tmp_path / "out"
    first = platform.batch.submit(_slow(model, source, out, workers=1))
    pid = _killed_while_running(platform, first.name)
    second = platform.batch.submit(request(model, source, out, overwrite=True))
    dead = platform.jobs.store.get_job(first.name)
    assert dead.status is JobStatus.FAILED and f"pid {pid}" in (dead.failure_reason or "")
    assert platform.jobs.wait(second.name, timeout_s=300).status is JobStatus.COMPLETED
    for index in range(2):
        assert (out / f"part-{index}.csv.out").read_bytes() == model.csv(ROWS)


def test_a_resumption_takes_the_claim_of_a_dead_job_at_once(
    model: Model, platform: Platform, tmp_path: Path
) -> None:
    source = _inputs(tmp_path)
    out = tmp_path / "out"
    first = platform.batch.submit(_slow(model, source, out, workers=1))
    _killed_while_running(platform, first.name)
    platform.jobs.get(first.name)  # the first is seen dead: Failed, its claim free
    second = platform.batch.submit(_slow(model, source, out, workers=1, overwrite=True))
    _killed_while_running(platform, second.name)
    resumed = platform.jobs.resume(first.name)  # the second's death is noticed here
    assert platform.jobs.store.get_job(second.name).status is JobStatus.FAILED
    done = platform.jobs.wait(resumed.name, timeout_s=300)
    assert done.status is JobStatus.COMPLETED, done.failure_reason
    for index in range(2):
        assert (out / f"part-{index}.csv.out").read_bytes() == model.csv(ROWS)


def test_a_job_whose_worker_cannot_start_releases_its_claim(
    model: Model, platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _inputs(tmp_path, files=1)
    out = tmp_path / "out"
    # A real launcher that fails with an error it does not expect: an environment the
    # operating system refuses (ValueError, not OSError).
    broken = LocalProcesses(tmp_path / "logs", {"BROKEN": "a\x00b"})
    monkeypatch.setattr(platform.jobs, "_processes", broken)
    before = _batch_jobs(platform)
    with pytest.raises(ValueError, match="null byte"):
        platform.batch.submit(request(model, source, out))
    (failed,) = _batch_jobs(platform) - before
    ended = platform.jobs.store.get_job(failed)
    assert ended.status is JobStatus.FAILED
    assert "could not start the worker process: ValueError" in (ended.failure_reason or "")
    monkeypatch.undo()
    again = platform.batch.submit(request(model, source, out))  # the claim is free
    assert platform.jobs.wait(again.name, timeout_s=300).status is JobStatus.COMPLETED
    assert (out / "part-0.csv.out").read_bytes() == model.csv(ROWS)


@contextmanager
def _reporting(
    model: Model, platform: Platform, tmp_path: Path
) -> Iterator[tuple[Platform, Job, Path]]:
    """A second platform on the same home whose workers beat every half second (a short
    stale_s), a slow job of its running and reporting, and the job's input folder."""
    quick = build(load_settings({}, home=platform.settings.home, trial_stale_s=2))
    try:
        source = _inputs(tmp_path, files=6)
        first = quick.batch.submit(_slow(model, source, tmp_path / "out", workers=1))
        running = wait_for(
            "the job's worker to run and report",
            lambda: quick.jobs.store.get_job(first.name),
            lambda job: job.status is JobStatus.IN_PROGRESS and job.heartbeat_at is not None,
            timeout=300,
        )
        yield quick, running, source
    finally:
        quick.close()


def test_a_job_asked_to_stop_from_another_machine_stops_and_frees_its_claim(
    model: Model, platform: Platform, tmp_path: Path
) -> None:
    # Another machine cannot signal the worker: it records the stop (Stopping), and the
    # worker's heartbeat sees it.
    with _reporting(model, platform, tmp_path) as (quick, first, source):
        quick.jobs.store.transition(first.name, (JobStatus.IN_PROGRESS,), JobStatus.STOPPING)
        done = quick.jobs.wait(first.name, timeout_s=300)
        assert done.status is JobStatus.STOPPED, done.failure_reason
        again = quick.batch.submit(request(model, source, tmp_path / "out", overwrite=True))
        assert quick.jobs.wait(again.name, timeout_s=300).status is JobStatus.COMPLETED


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_worker_whose_job_was_ended_elsewhere_stops_with_one_line(
    model: Model, platform: Platform, tmp_path: Path
) -> None:
    """Another machine took the job for dead and ended it: the worker's heartbeat sees it, the
    worker stops, and its refused final update is one line in the log, not a traceback."""
    with _reporting(model, platform, tmp_path) as (quick, first, _):
        assert first.pid is not None
        quick.jobs.store.transition(
            first.name, (JobStatus.IN_PROGRESS,), JobStatus.FAILED, failure_reason="taken for dead"
        )
        wait_for("the worker to stop", lambda: _running(first.pid or 0), lambda up: not up)
        log = quick.jobs.logs(first.name)
        assert f"job {first.name} was ended elsewhere; this worker stops" in log, log[-2000:]
        assert "Traceback" not in log, log[-2000:]
        assert quick.jobs.store.get_job(first.name).failure_reason == "taken for dead"


def test_a_worker_taken_for_dead_and_replaced_does_not_end_the_resumed_run(
    model: Model, platform: Platform, tmp_path: Path
) -> None:
    """Another machine took the job for dead and resumed it at once, while its first worker
    still ran: the first worker stops and must not end or report the second worker's run."""
    with _reporting(model, platform, tmp_path) as (quick, first, _):
        old = first.pid
        assert old is not None
        quick.jobs.store.transition(
            first.name, (JobStatus.IN_PROGRESS,), JobStatus.FAILED, failure_reason="taken for dead"
        )
        resumed = quick.jobs.resume(first.name)
        wait_for("the first worker to stop", lambda: _running(old), lambda up: not up)
        done = quick.jobs.wait(first.name, timeout_s=300)
        assert done.status is JobStatus.COMPLETED, done.failure_reason
        assert done.pid not in (None, old) and resumed.name == first.name
