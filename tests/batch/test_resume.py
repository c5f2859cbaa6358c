"""A batch job killed mid-way (SIGKILL to the process running it) or stopped resumes from its
manifest, redoes only the units not finished, and writes the bytes an uninterrupted run
writes; its worker processes do not outlive it."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from modelyard.batch import LocalExecutor
from modelyard.batch.coordinator import run_job
from modelyard.batch.plan import JobSpec, WorkUnit
from modelyard.batch.sink import UnitResult
from modelyard.domain.batch import TransformRequest
from modelyard.errors import JobFailed
from tests.batch.support import NAMES, Model, csv_text, features, register, request
from tests.waiting import wait_for

UNIT = 4096
CHILD = """
import pickle, sys, threading, time
from modelyard.batch import LocalExecutor
from modelyard.batch.coordinator import transform

class Paced(LocalExecutor):
    # Real workers; the coordinator only slows down, so that the kill lands mid-way.
    def run(self, job, units, done, stop):
        def slow(result):
            done(result)
            time.sleep(0.05)
        super().run(job, units, slow, stop)

request, source = pickle.loads(open(sys.argv[1], "rb").read())
transform(request, source, job="killed", executor=Paced(2), stop=threading.Event(),
          unit_bytes=int(sys.argv[2]))
"""


class Counting:
    """A LocalExecutor that counts the units it is given."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.units = 0
        self.stop_after = stop_after

    def run(
        self,
        job: JobSpec,
        units: Sequence[WorkUnit],
        done: Callable[[UnitResult], None],
        stop: threading.Event,
    ) -> None:
        self.units += len(units)
        seen = 0

        def counted(result: UnitResult) -> None:
            nonlocal seen
            done(result)
            seen += 1
            if self.stop_after is not None and seen >= self.stop_after:
                stop.set()

        LocalExecutor(1).run(job, units, counted, stop)


def inputs(folder: Path) -> None:
    folder.mkdir()
    (folder / "big.csv").write_bytes(csv_text(features(3000, seed=9)))
    (folder / "small.csv").write_bytes(csv_text(features(50, seed=10)))


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def reference(model: Model, tmp_path: Path) -> dict[str, bytes]:
    run_job(
        request(model, tmp_path / "in", tmp_path / "ref"), model.source, job="ref", unit_bytes=UNIT
    )
    return outputs(tmp_path / "ref")


def workers_of(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"modelyard.batch.worker" in argv and str(parent).encode() in argv:
                found.append(int(entry))
    return found


def test_a_killed_job_resumes_to_the_same_bytes(model: Model, tmp_path: Path) -> None:
    inputs(tmp_path / "in")
    expected = reference(model, tmp_path)
    out = tmp_path / "out"
    job_request: TransformRequest = request(model, tmp_path / "in", out, workers=2)
    (tmp_path / "job.pickle").write_bytes(pickle.dumps((job_request, model.source)))
    (tmp_path / "child.py").write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py"), str(tmp_path / "job.pickle"), str(UNIT)]
    )
    units = out / ".modelyard-batch" / "killed" / "units"
    try:
        wait_for(
            "five units done",
            lambda: len(os.listdir(units)) if units.exists() else 0,
            lambda n: n >= 5,
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not (out / "big.csv.out").exists()
    wait_for("no worker left", lambda: workers_of(child.pid), lambda pids: not pids)

    executor = Counting()
    outcome = run_job(job_request, model.source, job="killed", executor=executor, unit_bytes=UNIT)
    total = len(os.listdir(tmp_path / "in"))  # small.csv is one unit, big.csv many
    assert 0 < executor.units < (3000 * 80) // UNIT + total
    assert outputs(out) == expected
    assert outcome.counts.rows_out == 3050 and outcome.counts.files_done == 2


def test_a_stopped_job_resumes(model: Model, tmp_path: Path) -> None:
    inputs(tmp_path / "in")
    expected = reference(model, tmp_path)
    job_request = request(model, tmp_path / "in", tmp_path / "out")
    first = Counting(stop_after=3)
    with pytest.raises(JobFailed, match="stopped with 0 of 2 files done"):
        run_job(job_request, model.source, job="stopped", executor=first, unit_bytes=UNIT)
    assert not (tmp_path / "out" / "big.csv.out").exists()
    second = Counting()
    run_job(job_request, model.source, job="stopped", executor=second, unit_bytes=UNIT)
    assert second.units == first.units - 3
    assert outputs(tmp_path / "out") == expected


def test_a_job_whose_model_version_was_deleted_is_not_resumed(model: Model, tmp_path: Path) -> None:
    """A resumed job runs the version it resolved at submission; once that version is deleted
    it cannot run again. Resuming it flipped it to Pending and started a worker, which failed
    on the missing version: a Stopped job came back Failed, with its reason replaced."""
    import xgboost as xgb

    from modelyard.domain import JobStatus
    from modelyard.errors import VersionNotFound

    platform = model.platform
    rows = features(60, seed=4)
    booster = xgb.train(
        {"objective": "reg:squarederror", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(rows, label=rows[:, 0], feature_names=NAMES),
        num_boost_round=2,
    )
    gone = register(platform, "batch-gone", booster, tmp_path / "scratch")
    (tmp_path / "in.csv").write_bytes(csv_text(rows[:10]) + b"abc,1,2,3,4\n")  # fails at 11
    job = platform.batch.submit(request(gone, tmp_path / "in.csv", tmp_path / "out"))
    failed = platform.jobs.wait(job.name, timeout_s=300)
    assert failed.status is JobStatus.FAILED, failed.failure_reason
    platform.registry.delete_version(gone.ref)

    with pytest.raises(VersionNotFound) as refused:
        platform.jobs.resume(job.name)
    assert f"job {job.name!r} cannot resume" in refused.value.message
    assert "batch-gone" in refused.value.message and "no version 1" in refused.value.message
    after = platform.jobs.get(job.name)
    assert (after.status, after.failure_reason, after.pid) == (
        failed.status,
        failed.failure_reason,
        failed.pid,
    ), "nothing changed"
