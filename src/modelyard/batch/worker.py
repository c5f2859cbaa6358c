"""A batch worker process: ``python -m modelyard.batch.worker READ_FD WRITE_FD PARENT_PID``.

Started by :class:`~modelyard.batch.executor.LocalExecutor`. It reads the pickled
:class:`~modelyard.batch.plan.JobSpec` from ``READ_FD``, loads the model (answering
``("ready", None)`` or ``("error", exc)`` on ``WRITE_FD``), then runs each unit it is sent,
answering ``("done", result)`` or ``("error", exc)``, until it reads None or its parent goes
away. On Linux it also asks the kernel to kill it when its parent dies, so a killed job leaves
no worker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)


def main(argv: list[str]) -> int:
    reads, writes, parent = (int(a) for a in argv)
    _die_with_parent(parent)
    # Arrow's blocks here are small and short-lived: the system allocator returns them, where
    # Arrow's default pool keeps ~10 MiB a worker (measured, with the same speed).
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    inbox = Connection(reads, writable=False)
    outbox = Connection(writes, readable=False)
    # What every job needs, imported while the job is on its way (a prestarted worker waits
    # for it while its parent reads the store: see modelyard.batch.spawn).
    import pyarrow.csv  # noqa: F401

    import modelyard.batch.runner
    import modelyard.runtimes.packaged  # noqa: F401

    try:
        job = pickle.loads(inbox.recv_bytes())
    except (EOFError, OSError):
        return 0  # no job came: the pool did not need this one
    except Exception as exc:
        outbox.send(("error", _picklable(exc)))
        return 1
    return serve(job, inbox, outbox)


def serve(job: Any, inbox: Connection, outbox: Connection) -> int:
    """Load the model of ``job`` (lean: this process or thread exists to run units), answer
    ``("ready", None)``, then run the units ``inbox`` sends until None or its end; 0, or 1
    when the model could not be loaded. The pool's thread worker runs this too."""
    try:
        from modelyard.batch.runner import UnitRunner

        runner = UnitRunner(job, lean=True)
    except Exception as exc:
        outbox.send(("error", _picklable(exc)))
        return 1
    outbox.send(("ready", None))
    try:
        while True:
            try:
                unit = inbox.recv()
            except (EOFError, OSError):
                return 0
            if unit is None:
                return 0
            try:
                answer: tuple[str, Any] = ("done", runner(unit))
            except Exception as exc:
                answer = ("error", _picklable(exc))
            try:
                outbox.send(answer)
            except OSError:
                return 0  # the pool went away
    finally:
        runner.close()


def _picklable(exc: Exception) -> Exception:
    from modelyard.errors import JobFailed, ModelyardError

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return JobFailed(f"a batch worker failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, ModelyardError):
        return exc
    return JobFailed(f"a batch worker failed: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything it wrote is closed; tearing down numpy, Arrow and XGBoost module by module
    # would cost a loaded machine the better part of a second for nothing.
    os._exit(code)
