"""``python -m modelyard.worker JOB``: the process a job runs in.

Started by the job service's launcher (``modelyard.processes``), detached from the caller.
SIGTERM (``modelyard jobs stop``) sets a stop event the job checks as it goes. The job service
runs the job with the runner its kind registered (``bootstrap`` registers training, tuning and
batch); their helpers (trial runners, batch workers) are started from this process.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from modelyard.bootstrap import build


def main(argv: list[str]) -> int:
    """Run the job named in ``argv[0]``; exit 0 whatever the job's outcome (it is recorded)."""
    if len(argv) != 1:
        print("usage: python -m modelyard.worker JOB_NAME", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    platform = build()
    try:
        platform.jobs.run(argv[0], stop)
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
