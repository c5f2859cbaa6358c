"""Where a job's log lives and how it is read, for every kind of job.

While a job runs, its log is a file on the machine running it (``<home>/jobs/<job>.log``),
written through :class:`~modelyard.training.joblog.JobLog`, which bounds it. When the job
ends, :meth:`JobLogs.keep` moves it into the artifact store, capped to its head and tail: the
store's copy is then the only one, and the one every machine reads (the multi-node case has
no shared home). Readers stream from whichever exists, never holding a whole log in memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from modelyard.domain import Job
from modelyard.errors import InvalidInput, ModelyardError
from modelyard.storage.base import ArtifactStore
from modelyard.training.joblog import (
    LogFollower,
    LogLimits,
    finalize,
    head_stop,
    last_lines,
    read_range,
    tail_start,
)

#: Lines of the log quoted in a failed job's reason.
REASON_LINES = 40


class JobLogs:
    """The logs of jobs: live files in ``folder``, kept copies in ``artifacts``."""

    def __init__(self, artifacts: ArtifactStore, folder: Path, limits: LogLimits) -> None:
        self._artifacts = artifacts
        self._folder = folder
        self.limits = limits

    def path(self, name: str) -> Path:
        """Where the worker writes job ``name``'s log on this machine."""
        return self._folder / f"{name}.log"

    def last_lines(self, name: str) -> str:
        """The live log's last lines, each cut short, for a failure reason ("" if none)."""
        return last_lines(self.path(name), REASON_LINES)

    def keep(self, path: Path) -> str | None:
        """Copy an ended job's log into the artifact store, capped to its head and tail; its
        digest, or None if it cannot be kept there (then the capped log stays on this machine).
        The live file stays until :meth:`discard`.
        """
        try:
            capped = finalize(path, self.limits)
        except OSError:  # no log (the job never started), or unreadable: nothing to keep
            return None
        except Exception:  # tidying a log must never block a job's end
            # A log whose text fooled the cut bookkeeping stays where it is, uncapped at rest
            # but bounded as written; the job's state matters more than its log's tidiness.
            return None
        try:
            digest = self._artifacts.put_file(capped).sha256
        except (ModelyardError, OSError):
            with contextlib.suppress(OSError):
                os.replace(capped, path)
            return None  # the log stays on this machine; the job result matters more
        finally:
            with contextlib.suppress(FileNotFoundError):
                capped.unlink()
        return digest

    def restore(self, job: Job, note: str) -> None:
        """Put an ended job's kept log back as its live file, followed by ``note``, so a job
        run again (a resumed batch job) appends to the log of its earlier runs."""
        path = self.path(job.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and job.log_digest:
            with contextlib.suppress(ModelyardError, OSError):  # a lost log must not block it
                self._artifacts.get_file(job.log_digest, path)
        with open(path, "a", encoding="utf-8") as log:
            log.write(note)

    @staticmethod
    def discard(path: Path) -> None:
        """Remove the live log once the job's record points at its stored copy (so the log is
        stored once, and is never missing from both places in between)."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def read(self, job: Job, head: int | None = None, tail: int | None = None) -> Iterator[str]:
        """The log of ``job`` in chunks: all of it, its first ``head`` lines or its last
        ``tail`` lines (check the counts first: :func:`check_line_counts`)."""
        with self.open(job) as log:
            if log is None:
                return
            start = tail_start(log, tail) if tail is not None else 0
            stop = head_stop(log, head) if head is not None else None
            yield from read_range(log, start, stop)

    def follow(
        self, current: Callable[[], Job], tail: int | None = None, poll_s: float = 0.5
    ) -> Iterator[str]:
        """A job's log as it grows, until the job ends; ``current()`` is the job's latest
        state. Output cut from a long log before it could be shown is replaced by a line
        saying how much."""
        follower = LogFollower(self.limits)
        started = False
        while True:
            job = current()  # before reading: a finished job's log is complete
            with self.open(job) as log:
                if log is not None:
                    if not started and tail is not None:
                        follower.skip_to_last_lines(log, tail)
                    started = True
                    yield from follower.read(log)
            if job.status.finished:
                return
            time.sleep(poll_s)

    @contextlib.contextmanager
    def open(self, job: Job) -> Iterator[BinaryIO | None]:
        """The log of ``job`` opened for reading: the live file, else a local copy of the kept
        one, else None."""
        try:
            live = open(self.path(job.name), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            live = None
        if live is not None:
            with live:
                yield live
            return
        if not job.log_digest:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="modelyard-log-") as scratch:
            copy = Path(scratch) / "job.log"
            self._artifacts.get_file(job.log_digest, copy)
            with open(copy, "rb") as kept:
                yield kept


def check_line_counts(head: int | None = None, tail: int | None = None) -> None:
    """Raises InvalidInput for a negative count, or for both a head and a tail."""
    for what, count in (("first", head), ("last", tail)):
        if count is not None and count < 0:
            raise InvalidInput(f"the number of {what} lines must be 0 or more, got {count}")
    if head is not None and tail is not None:
        raise InvalidInput("ask for the first lines or the last lines of a log, not both")
