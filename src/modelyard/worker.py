"""``python -m modelyard.worker [--trials] JOB``: the process a job runs in.

Started by the training service's launcher (``bootstrap``), detached from the caller. SIGTERM
(``modelyard jobs stop``) sets a stop event the job checks between rounds; the training script
of a script-mode job is killed with its process group.

- ``JOB`` a training job: train it. A tuning job: coordinate it (start trial runners, watch
  them, register the best model).
- ``--trials JOB``: a trial runner of tuning job ``JOB`` in a fresh interpreter; it stops when
  its parent dies. (Coordinators fork their runners instead: ``bootstrap._fork_runner``.)
"""

from __future__ import annotations

import signal
import sys
import threading

from modelyard.bootstrap import build, stop_with_parent
from modelyard.domain import JobKind

_USAGE = "usage: python -m modelyard.worker [--trials] JOB_NAME"


def main(argv: list[str]) -> int:
    """Run the job named in ``argv``; exit 0 whatever the job's outcome (it is recorded)."""
    trials = argv[:1] == ["--trials"]
    names = argv[1:] if trials else argv
    if len(names) != 1:
        print(_USAGE, file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if trials:
        stop_with_parent()
    platform = build()
    try:
        if trials:
            platform.tuning.run_trials(names[0], stop)
        elif platform.training.get(names[0]).kind is JobKind.TUNING:
            platform.tuning.run(names[0], stop)
        else:
            platform.training.run(names[0], stop)
    finally:
        platform.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
