"""``python -m modelyard.worker [--prestart MODULE:N]... JOB``: the process a job runs in.

Started by the job service's launcher (``modelyard.processes``), detached from the caller.
SIGTERM (``modelyard jobs stop``) sets a stop event the job checks as it goes. The job service
runs the job with the runner its kind registered (``bootstrap`` registers training, tuning and
batch); their helpers (trial runners, batch workers) are started from this process.

``--prestart MODULE:N`` (the kind's runner asks for it, see ``JobKindRunner.worker_args``)
calls ``MODULE.prestart(N)`` before anything else is imported, so that helper processes start
while this one imports its modules and reads the store: a batch job's worker processes do.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading

_USAGE = "usage: python -m modelyard.worker [--prestart MODULE:N]... JOB_NAME"


def main(argv: list[str]) -> int:
    """Run the job named last in ``argv``; exit 0 whatever the job's outcome (it is recorded),
    2 for a command line it cannot read."""
    prestarts: list[tuple[str, int]] = []
    while len(argv) >= 3 and argv[0] == "--prestart":
        module, _, number = argv[1].rpartition(":")
        if not module or not (number.isascii() and number.isdigit()):
            break
        prestarts.append((module, int(number)))
        argv = argv[2:]
    if len(argv) != 1 or argv[0].startswith("-"):
        print(_USAGE, file=sys.stderr)
        return 2
    stop = threading.Event()
    from modelyard.processes import set_on_signals

    set_on_signals(stop, signal.SIGTERM)
    for module, count in prestarts:
        try:
            importlib.import_module(module).prestart(count)
        except Exception as exc:  # only a head start: the job runs without it
            print(f"warning: --prestart {module}:{count} failed: {exc!r}", file=sys.stderr)
    from modelyard.bootstrap import build
    from modelyard.errors import Conflict

    platform = build()
    try:
        platform.jobs.run(argv[0], stop)
    except Conflict as exc:
        # Ended elsewhere meanwhile (taken for dead from another machine, or stopped there),
        # or resumed by another worker: its outcome is not this worker's to record.
        now = platform.jobs.store.get_job(argv[0])
        if not (now.status.finished or now.pid != os.getpid()):
            raise
        print(f"job {argv[0]} was ended elsewhere; this worker stops: {exc}", file=sys.stderr)
    finally:
        platform.close()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # The job is recorded and the stores are closed; user code runs in processes of its own
    # (training scripts, trial runners, batch workers). Tearing down SQLAlchemy, numpy, Arrow
    # and XGBoost module by module took 0.2-0.3 s after every job, for nothing.
    os._exit(code)
