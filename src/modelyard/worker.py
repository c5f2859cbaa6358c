"""``python -m modelyard.worker JOB``: the process a job runs in.

Started by the training service's launcher (``bootstrap``), detached from the caller. SIGTERM
(``modelyard jobs stop``) sets a stop event the job checks between rounds; the training script
of a script-mode job is killed with its process group. A training job is trained here; a
tuning job is coordinated here (its trial runners are forked from this process:
``bootstrap._fork_runner``).
"""

from __future__ import annotations

import signal
import sys
import threading

from modelyard.bootstrap import build
from modelyard.domain import JobKind


def main(argv: list[str]) -> int:
    """Run the job named in ``argv[0]``; exit 0 whatever the job's outcome (it is recorded)."""
    if len(argv) != 1:
        print("usage: python -m modelyard.worker JOB_NAME", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    platform = build()
    try:
        if platform.training.get(argv[0]).kind is JobKind.TUNING:
            platform.tuning.run(argv[0], stop)
        else:
            platform.training.run(argv[0], stop)
    finally:
        platform.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
