"""A job stopped after its worker was started but before the worker took it (the first second
of every job: the worker is still importing) ends Stopped as a job stopped before it started:
its worker leaves quietly, without a traceback in the job's log or reason, and lets go of the
output."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from modelyard.bootstrap import Platform
from modelyard.domain import JobStatus
from modelyard.processes import LocalProcesses
from tests.batch.support import Model, csv_text, features, request
from tests.waiting import wait_for

ROWS = features(50, seed=5)


#: A worker that has not taken its job yet: it waits for a gate file (a stop's signal waits
#: too), then becomes ``python -m modelyard.worker ARGS`` under the same pid.
_GATED = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1] + ".ready", "w").close()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
os.execv(sys.executable, [sys.executable, "-m", "modelyard.worker", *sys.argv[2:]])
"""


class _Gated(LocalProcesses):
    """The real launcher, but its workers take their job only once ``gate`` exists: the job
    stays Pending with its worker's pid meanwhile, as while a worker imports."""

    def __init__(self, platform: Platform, gate: Path) -> None:
        real = platform.jobs._processes
        assert isinstance(real, LocalProcesses)
        super().__init__(real._log_dir, real._environ)
        self._platform = platform
        self._gate = gate
        self.started: list[subprocess.Popen[bytes]] = []

    def launch(self, args: Sequence[str], log_name: str) -> int:
        log = self._platform.jobs.log_path(log_name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            worker = subprocess.Popen(
                [sys.executable, "-c", _GATED, str(self._gate), *args],
                env=self._environ,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        self.started.append(worker)
        return worker.pid


@pytest.fixture
def gated(platform: Platform, tmp_path: Path) -> Iterator[_Gated]:
    launcher = _Gated(platform, tmp_path / "gate")
    real = platform.jobs._processes
    platform.jobs._processes = launcher
    try:
        yield launcher
    finally:
        platform.jobs._processes = real
        for worker in launcher.started:
            worker.kill()
            worker.wait()


def test_a_job_stopped_before_its_worker_took_it_ends_stopped_without_a_traceback(
    model: Model, platform: Platform, tmp_path: Path, gated: _Gated
) -> None:
    source = tmp_path / "rows.csv"
    source.write_bytes(csv_text(ROWS))
    out = tmp_path / "out"
    job = platform.batch.submit(request(model, source, out))
    (worker,) = gated.started
    ready = tmp_path / "gate.ready"
    wait_for("the worker to start", ready.exists, bool, timeout=300)
    assert platform.jobs.store.get_job(job.name).pid == worker.pid
    assert platform.jobs.stop(job.name).status is JobStatus.STOPPING

    (tmp_path / "gate").touch()  # the worker now takes the job
    assert worker.wait(timeout=300) == 0, platform.jobs.logs(job.name)[-3000:]
    ended = platform.jobs.wait(job.name, timeout_s=300)
    assert ended.status is JobStatus.STOPPED
    assert ended.failure_reason == "stopped before it started"
    assert "Traceback" not in platform.jobs.logs(job.name)
    assert not out.exists() or not any(out.iterdir())
    platform.jobs._processes = LocalProcesses(gated._log_dir, gated._environ)
    again = platform.batch.submit(request(model, source, out))  # the output is free
    assert platform.jobs.wait(again.name, timeout_s=300).status is JobStatus.COMPLETED
    assert (out / "rows.csv.out").read_bytes() == model.csv(ROWS)
