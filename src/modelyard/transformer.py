"""``Transformer``: batch transform jobs from Python, with the SageMaker SDK's names.

    from modelyard import Transformer
    t = Transformer(model_name="churn:3", output_path="scored/", strategy="MultiRecord")
    t.transform("data/2026-12/", content_type="text/csv", split_type="Line")
    t.latest_transform_job.name, t.counts_.rows_out

SageMaker's spelling of the options (``MultiRecord``, ``Line``, ``Input``…) and modelyard's
(``multi-record``, ``line``, ``input``) are both accepted. ``instance_count`` is the number of
worker processes; ``executor="ray"`` (and ``address="ray://…"``) runs them on Ray. A thin
adapter over ``BatchService``: the job runs in its own process exactly as ``modelyard batch``
runs it, and ``transform`` waits for it unless ``wait=False``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.domain import Job
from modelyard.domain.batch import BatchCounts, TransformRequest

if TYPE_CHECKING:
    from modelyard.bootstrap import Platform

#: SageMaker SDK values → modelyard's.
_SPELLINGS = {
    "multirecord": "multi-record",
    "singlerecord": "single-record",
    "line": "line",
    "none": "none",
    "input": "input",
}


def _spelled(value: str | None, default: str) -> str:
    if value is None:
        return default
    return _SPELLINGS.get(value.replace("-", "").lower(), value.lower())


class Transformer:
    """A batch transform of one model version; ``transform`` runs it as a job.

    Learned attributes (set by ``transform``): ``latest_transform_job`` (the job) and, once it
    has ended, ``counts_`` (rows in, out and failed; files).
    """

    def __init__(
        self,
        model_name: str,
        output_path: str,
        *,
        instance_count: int | None = None,
        strategy: str | None = None,
        max_payload: float = 6.0,
        max_errors: int = 0,
        overwrite: bool = False,
        executor: str = "local",
        address: str | None = None,
        platform: Platform | None = None,
    ) -> None:
        self.model_name = model_name
        self.output_path = output_path
        self.instance_count = instance_count
        self.strategy = strategy
        self.max_payload = max_payload
        self.max_errors = max_errors
        self.overwrite = overwrite
        self.executor = executor
        self.address = address
        self._platform = platform
        self.latest_transform_job: Job | None = None

    def _get_platform(self) -> Platform:
        if self._platform is None:
            from modelyard.bootstrap import build

            self._platform = build()
        return self._platform

    def transform(
        self,
        data: str,
        *,
        content_type: str | None = None,
        split_type: str | None = None,
        input_filter: str | None = None,
        output_filter: str | None = None,
        join_source: str | None = None,
        header: bool | None = None,
        wait: bool = True,
    ) -> Transformer:
        """Submit a batch job over ``data`` (a file, folder, glob or URL) and, by default, wait.

        Raises:
            InvalidInput, ModelNotFound…, AlreadyExists, StorageNotWritable: a bad request
            (nothing submitted); JobFailed when the job fails (it can be resumed).
        """
        request = TransformRequest.from_dict(
            {
                "model": self.model_name,
                "input": data,
                "output": self.output_path,
                "content_type": content_type,
                "header": header,
                "split_type": _spelled(split_type, "line"),
                "batch_strategy": _spelled(self.strategy, "multi-record"),
                "max_payload_mb": self.max_payload,
                "join_source": _spelled(join_source, "none"),
                "input_filter": input_filter,
                "output_filter": output_filter,
                "workers": self.instance_count,
                "max_errors": self.max_errors,
                "overwrite": self.overwrite,
                "executor": self.executor,
                "address": self.address,
            }
        )
        self.latest_transform_job = self._get_platform().batch.submit(request)
        if wait:
            self.wait()
        return self

    def wait(self, timeout_s: float | None = None) -> Job:
        """Block until the latest job ends; raises JobFailed if it did not complete."""
        from modelyard.services.jobs import failure_of

        if self.latest_transform_job is None:
            raise RuntimeError("transform() has not been called")
        job = self._get_platform().jobs.wait(self.latest_transform_job.name, timeout_s)
        self.latest_transform_job = job
        if job.status.finished:
            self.counts_ = BatchCounts.from_metrics(job.metrics)
            failed = failure_of(job)
            if failed is not None:
                raise failed
        return job
