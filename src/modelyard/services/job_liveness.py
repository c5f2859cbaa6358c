"""Whether a job's worker is alive when it runs on another machine, and the heartbeats that
tell: one rule for every kind of job (a tuning trial, a batch job).

A process on one machine cannot ask another's whether a pid still runs, so a worker stamps
its job every :func:`beat_interval` and a job whose stamp has not moved for ``stale_s`` is
taken for dead: its process or its machine is gone. Silence is measured on one clock: the
store's (see ``JobStore.clock``), or the observer's own when it watches the stamp change.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime

from modelyard.domain import Job, JobStatus
from modelyard.storage.base import JobStore


def beat_interval(stale_s: float) -> float:
    """How often a worker stamps its job when a silence of ``stale_s`` means dead: four
    beats at least in that time (a missed beat or two is not a death), and between half a
    second and ten seconds."""
    return min(10.0, max(0.5, stale_s / 4))


def silent_for(job: Job, now: datetime) -> float:
    """Seconds since ``job``'s last sign of life (a heartbeat, its start, its creation) by
    ``now``, which must be on the clock of the heartbeats: the store's."""
    return max(0.0, (now - job.last_seen).total_seconds())


def not_reporting(job: Job, silent_s: float, what: str = "its worker") -> str:
    """Why a job on another machine was taken for dead, for its failure reason."""
    return (
        f"{what} on {job.host} (pid {job.pid}) has not reported for {silent_s:.0f} s: "
        "the process or its machine is gone"
    )


class Heartbeat:
    """A worker's sign of life, from a thread: :meth:`beat` every ``interval_s`` while the
    block runs (from its start if ``at_start``). A store briefly unreachable (any error)
    is retried at the next beat."""

    def __init__(self, interval_s: float, *, at_start: bool = False) -> None:
        self._interval_s = interval_s
        self._at_start = at_start
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def beat(self) -> None:
        """One beat (subclasses stamp their job and look at what they should stop for)."""

    def _run(self) -> None:
        if self._at_start:
            self._beat_once()
        while not self._done.wait(self._interval_s):
            self._beat_once()

    def _beat_once(self) -> None:
        try:
            self.beat()
        except Exception:  # the store unreachable, a pool timeout: the next beat tries again
            return


class JobHeartbeat(Heartbeat):
    """A job worker's heartbeat: it stamps job ``name`` from the start, and sets ``stop`` once
    the job is Stopping (a stop asked from another machine, which cannot signal this process),
    ended by someone else (taken for dead: it must not go on writing what it claimed), or run
    by another worker (taken for dead and resumed: the new run is not this worker's)."""

    def __init__(
        self, jobs: JobStore, name: str, stop: threading.Event, interval_s: float, host: str
    ) -> None:
        super().__init__(interval_s, at_start=True)
        self._jobs = jobs
        self._name = name
        self._stop = stop
        self._host = host
        self._pid = os.getpid()

    def beat(self) -> None:
        job = self._jobs.get_job(self._name)
        elsewhere = (job.pid is not None and job.pid != self._pid) or (
            job.host is not None and job.host != self._host
        )
        if job.status is JobStatus.STOPPING or job.status.finished or elsewhere:
            self._stop.set()
        if not elsewhere:
            self._jobs.heartbeat([self._name], datetime.now(UTC))
