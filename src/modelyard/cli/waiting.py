"""Waiting in the foreground for a job (``batch``, ``train``, ``tune``, ``jobs resume``).

A job's worker runs in a session of its own (:mod:`modelyard.processes`), so Ctrl-C reaches
the command that waits, not the job: the job goes on in the background. The command says so,
and how to see or stop it, before it exits 130 (the translator in :mod:`modelyard.cli.errors`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from modelyard.domain import Job, JobKind


@contextmanager
def interrupted_says_so(job: Job) -> Iterator[None]:
    """Around a wait for ``job``: on Ctrl-C, one line on stderr saying the job runs on and
    naming the commands that show and stop it; the interrupt then goes on (exit 130)."""
    try:
        yield
    except KeyboardInterrupt:
        group = "tune" if job.kind is JobKind.TUNING else "jobs"
        what = "job" if job.kind is JobKind.TRAINING else f"{job.kind.value} job"
        typer.echo(
            f"interrupted: no longer waiting; {what} {job.name} keeps running in the "
            f"background (see it with `modelyard {group} show {job.name}`, stop it with "
            f"`modelyard {group} stop {job.name}`)",
            err=True,
        )
        raise
