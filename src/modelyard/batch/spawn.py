"""Batch worker processes: starting them, and starting them early.

A worker process is ``python -m modelyard.batch.worker READ_FD WRITE_FD PARENT_PID`` with two
pipes to this process. It imports what every job needs (numpy, Arrow, the record readers),
then waits for its job. A job's worker process can start them before it has read its own job
(``python -m modelyard.worker --prestart modelyard.batch.spawn:N JOB``, see
:func:`prestart`): they import while it imports its own modules and reads the store, instead
of after. Measured on a 1M-row job, that takes ~0.5 s off the command. The executor's pool
takes these warm processes first (:func:`take`). Standard library only, so that the job's
worker process can call it before it imports anything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection

__all__ = ["Spawned", "default_workers", "discard_warm", "prestart", "spawn", "take"]


@dataclass(eq=False)
class Spawned:
    """A worker process and this process's ends of its pipes."""

    process: subprocess.Popen[bytes]
    send: Connection
    receive: Connection


_warm: list[Spawned] = []


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def spawn() -> Spawned:
    """Start a worker process (it waits for a pickled JobSpec on ``send``).

    Raises:
        OSError: it could not start.
    """
    child_reads, parent_writes = os.pipe()
    parent_reads, child_writes = os.pipe()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelyard.batch.worker",
                str(child_reads),
                str(child_writes),
                str(os.getpid()),
            ],
            pass_fds=(child_reads, child_writes),
            stdin=subprocess.DEVNULL,
        )
    except OSError:
        for fd in (parent_reads, parent_writes):
            os.close(fd)
        raise
    finally:
        os.close(child_reads)
        os.close(child_writes)
    return Spawned(
        process,
        Connection(parent_writes, readable=False),
        Connection(parent_reads, writable=False),
    )


def prestart(count: int) -> None:
    """Start ``count`` worker processes now, for the pool of the job this process will run.
    One that cannot start is left out (the pool starts it, or reports why)."""
    for _ in range(count):
        try:
            _warm.append(spawn())
        except OSError:
            return


def take() -> Spawned:
    """A warm worker process if one is left, else a new one. Raises OSError (see
    :func:`spawn`)."""
    return _warm.pop(0) if _warm else spawn()


def discard_warm() -> None:
    """End the warm processes no pool took (they hold nothing but their imports)."""
    while _warm:
        spawned = _warm.pop()
        spawned.process.kill()
        spawned.process.wait()
        spawned.send.close()
        spawned.receive.close()
