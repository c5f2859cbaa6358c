"""``TrainingJob``: the SageMaker SDK's ``estimator.latest_training_job``, a handle on a job.

    est.fit(train="data/train.csv", wait=False)
    est.latest_training_job.describe()["TrainingJobStatus"]   # "InProgress"
    est.latest_training_job.wait(logs="None")                  # or est.logs() to watch it

A thin adapter over the job services: waiting, following the log and stopping are theirs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelyard.domain import Job
from modelyard.domain.training_description import describe_training_job
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from modelyard.bootstrap import Platform


class TrainingJob:
    """A training job, as the SDK's ``_TrainingJob``: ``name`` (and ``job_name``), ``wait``,
    ``describe`` and ``stop``. ``on_end(job)`` is told the job's final state when ``wait``
    sees it (the estimator learns its model from it)."""

    def __init__(
        self, platform: Platform, job_name: str, on_end: Callable[[Job], None] | None = None
    ) -> None:
        self._platform = platform
        self.job_name = job_name
        self.name = job_name
        self._on_end = on_end

    def wait(self, logs: bool | str = "All") -> None:
        """Block until the job ends, printing its log meanwhile unless ``logs`` says not to
        (the SDK's ``"All"``, ``"Training"`` or True print it; ``"None"``, ``"Rules"`` or
        False do not).

        Raises:
            InvalidInput: another ``logs``. JobFailed: the job failed or was stopped.
        """
        if shows_logs(logs):
            print_log(self._platform, self.name)
        job = self._platform.jobs.wait(self.name)
        if self._on_end is not None:
            self._on_end(job)
        from modelyard.services.jobs import failure_of

        failed = failure_of(job)
        if failed is not None:
            raise failed

    def describe(self) -> dict[str, Any]:
        """The job now, as SageMaker's DescribeTrainingJob answers (see
        :func:`~modelyard.domain.training_description.describe_training_job`)."""
        return describe_training_job(self._platform.training.get(self.name))

    def stop(self) -> None:
        """Ask the job to stop. Raises Conflict if it already ended."""
        self._platform.jobs.stop(self.name)


def print_log(platform: Platform, name: str) -> None:
    """Print job ``name``'s log as it grows, until the job ends."""
    for chunk in platform.jobs.follow_log(name):
        sys.stdout.write(chunk)
        sys.stdout.flush()


def shows_logs(logs: object) -> bool:
    """Whether to print a job's log while waiting, given the SageMaker SDK's ``logs``:
    ``"All"``, ``"Training"`` or True (its training log), ``"None"``, ``"Rules"`` or False
    (not; a modelyard job has no debugger rules to show).

    Raises:
        InvalidInput: any other value.
    """
    if isinstance(logs, bool):
        return logs
    if logs in ("All", "Training"):
        return True
    if logs in ("None", "Rules"):
        return False
    raise InvalidInput(
        f"logs must be 'All', 'None', 'Training', 'Rules', True or False, got {logs!r}"
    )
