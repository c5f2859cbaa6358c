"""``Transformer``: batch transform jobs from Python, with the SageMaker SDK's names.

    from modelyard import Transformer
    t = Transformer(model_name="churn:3", output_path="scored/", strategy="MultiRecord")
    t.transform("data/2026-12/", content_type="text/csv", split_type="Line")
    t.latest_transform_job.name, t.counts_.rows_out

The constructor takes the SDK's as SDK code writes it, ``Transformer(model_name,
instance_count, instance_type, strategy=…, assemble_with="Line", output_path=…)``.
SageMaker's spelling of the options (``MultiRecord``, ``Line``, ``Input``…) and modelyard's
(``multi-record``, ``line``, ``input``) are both accepted. ``instance_count`` is the number of
worker processes; ``executor="ray"`` (and ``address="ray://…"``) runs them on Ray; an
``instance_type`` other than the SDK's local mode is taken with a warning that it is not used.
``Transformer.attach(job_name)`` binds one to an existing batch job, as the SDK's does.
A thin adapter over ``BatchService``: the job runs in its own process exactly as ``modelyard
batch`` runs it, and ``transform`` waits for it unless ``wait=False``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING

from modelyard.domain import Job
from modelyard.domain.batch import MAX_PAYLOAD_MB, BatchCounts, BatchFormat, TransformRequest
from modelyard.domain.references import validate_name
from modelyard.errors import InvalidInput, ModelyardError
from modelyard.estimator import platform_of
from modelyard.sdk_instances import LOCAL_INSTANCE_TYPES

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
        instance_count: int | None = None,
        instance_type: str | None = None,
        strategy: str | None = None,
        assemble_with: str | None = None,
        output_path: str | PathLike[str] | None = None,
        output_kms_key: str | None = None,
        accept: str | None = None,
        max_concurrent_transforms: int | None = None,
        max_payload: float | None = None,
        tags: Sequence[Mapping[str, str]] | None = None,
        env: Mapping[str, str] | None = None,
        base_transform_job_name: str | None = None,
        sagemaker_session: Platform | None = None,
        volume_kms_key: str | None = None,
        *,
        max_errors: int = 0,
        overwrite: bool = False,
        executor: str = "local",
        address: str | None = None,
        platform: Platform | None = None,
    ) -> None:
        """The SDK's arguments in the SDK's order, then modelyard's; ``max_payload`` None is
        SageMaker's default (6 MB), and ``assemble_with`` ``Line`` (or None) is how outputs
        are written here. ``accept``, the outputs' format, is the inputs' here (see
        :meth:`transform`). ``max_concurrent_transforms`` is the model calls at once on each
        instance (a worker process here: ``instance_count * max_concurrent_transforms``
        workers; None or 0: not set). ``base_transform_job_name`` prefixes the name of each
        job :meth:`transform` starts without a ``job_name``, as the SDK's: the prefix and the
        time to the millisecond. ``sagemaker_session`` is a modelyard Platform (as
        ``platform``) or None.

        Raises:
            InvalidInput: an ``instance_count`` that is not a whole number of 1 or more, an
                empty ``instance_type``, an ``assemble_with`` other than ``Line`` or ``None``,
                no ``output_path`` (there is no default bucket), a ``max_payload`` that is
                not a number of MB from more than 0 to ``MAX_PAYLOAD_MB``, a
                ``max_concurrent_transforms`` that is not a whole number of 0 or more, a
                ``base_transform_job_name`` that is not a job name (InvalidName), tags, env
                or a KMS key (none can be honoured here: the message says why), or a
                ``sagemaker_session`` that is not a Platform (an SDK Session), or both it
                and ``platform``.
        """
        _check_instances(instance_count, instance_type)
        _check_max_payload(max_payload)
        _check_unhonoured(output_kms_key, volume_kms_key, tags, env)
        _check_concurrency(max_concurrent_transforms)
        if base_transform_job_name is not None:
            validate_name(base_transform_job_name, "base_transform_job_name")
        if assemble_with is not None and _spelled(assemble_with, "") not in ("line", "none"):
            raise InvalidInput(f"assemble_with must be 'Line' or 'None', got {assemble_with!r}")
        if output_path is None:
            raise InvalidInput(
                "output_path is required: the folder or URL that receives the outputs"
            )
        if sagemaker_session is not None:
            if platform is not None:
                raise InvalidInput("give sagemaker_session or platform, not both")
            platform = platform_of(sagemaker_session)
        self.model_name = model_name
        self.output_path = _text(output_path)
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.strategy = strategy
        self.assemble_with = assemble_with
        self.accept = accept
        self.max_concurrent_transforms = max_concurrent_transforms
        self.max_payload = 6.0 if max_payload is None else max_payload
        self.max_errors = max_errors
        self.overwrite = overwrite
        self.executor = executor
        self.address = address
        self.base_transform_job_name = base_transform_job_name
        self._platform = platform
        self.latest_transform_job: Job | None = None

    @property
    def sagemaker_session(self) -> Platform:
        """The platform the jobs run on (the SDK's session): the one given, else built from
        the settings."""
        return self._get_platform()

    @classmethod
    def attach(
        cls, transform_job_name: str, sagemaker_session: Platform | None = None
    ) -> Transformer:
        """A transformer bound to an existing batch job, as the SageMaker SDK's
        ``Transformer.attach``: its parameters are the job's (the model as the job was given
        it, ``instance_count``, ``strategy``, ``output_path``, ``max_concurrent_transforms``,
        ``max_payload``, ``max_errors``, ``overwrite``, ``executor``), ``latest_transform_job``
        is the job (``wait``, ``stop_transform_job`` act on it; ``counts_`` is set if it has
        ended), and its name is ``base_transform_job_name``, the prefix of the next job's.
        As in the SDK, the job is not waited for.

        Raises:
            JobNotFound: no job has that name. InvalidInput: it is a training or tuning job,
                or ``sagemaker_session`` is not a modelyard Platform.
        """
        given = platform_of(sagemaker_session)
        platform = given or _built()
        try:
            job = platform.batch.get(transform_job_name)
        except BaseException:
            if given is None:  # made here for the transformer that is not made
                platform.close()
            raise
        request = TransformRequest.from_dict(job.spec)  # the model as given, not as pinned
        transformer = cls(
            request.model,
            request.workers,
            strategy=request.batch_strategy.value,
            output_path=request.output,
            max_concurrent_transforms=request.max_concurrent_transforms,
            max_payload=request.max_payload_mb,
            base_transform_job_name=job.name,
            max_errors=request.max_errors,
            overwrite=request.overwrite,
            executor=request.executor.value,
            address=request.address,
            platform=platform,
        )
        transformer.latest_transform_job = job
        if job.status.finished:
            transformer.counts_ = BatchCounts.from_metrics(job.metrics)
        return transformer

    def _get_platform(self) -> Platform:
        if self._platform is None:
            self._platform = _built()
        return self._platform

    def transform(
        self,
        data: str | PathLike[str],
        data_type: str = "S3Prefix",
        content_type: str | None = None,
        compression_type: str | None = None,
        split_type: str | None = None,
        job_name: str | None = None,
        input_filter: str | None = None,
        output_filter: str | None = None,
        join_source: str | None = None,
        experiment_config: dict[str, str] | None = None,
        model_client_config: dict[str, str] | None = None,
        batch_data_capture_config: object | None = None,
        wait: bool = True,
        logs: bool = True,
        *,
        header: bool | None = None,
    ) -> Transformer:
        """Submit a batch job over ``data`` (a file, folder, glob or URL) and, by default, wait.

        The SDK's arguments in the SDK's order, with its meanings: ``data_type`` ``S3Prefix``
        (``data`` names the inputs); ``compression_type`` ``Gzip`` (every input is a ``.gz``
        file); ``job_name`` the job's name (else one is made); ``logs`` prints the job's log
        once it ends (with ``wait``). ``experiment_config`` and ``model_client_config`` (no
        experiments, no HTTP calls to a container here) are taken with a warning.

        Raises:
            InvalidInput, ModelNotFound…, AlreadyExists, StorageNotWritable: a bad request
            (nothing submitted): ``data_type="ManifestFile"``, a ``batch_data_capture_config``,
            an ``accept`` other than the inputs' format, ``assemble_with="None"`` on records
            that are lines included; JobFailed when the job fails (it can be resumed).
        """
        _check_sdk_arguments(data_type, compression_type, batch_data_capture_config, wait, logs)
        split = _spelled(split_type, "line")
        if content_type is not None:  # application/json by line is JSON Lines, as in the SDK
            content_type = BatchFormat.parse(content_type, split).value
        _check_accept(self.accept, content_type)
        for name, given, why in (
            ("experiment_config", experiment_config, "a job joins no experiment here"),
            (
                "model_client_config",
                model_client_config,
                "records go to the model in the job's worker processes, not to a container "
                "over HTTP",
            ),
        ):
            if given is not None:
                warnings.warn(f"{name} is not used: {why}", UserWarning, stacklevel=2)
        run_together = self.assemble_with is not None and _spelled(self.assemble_with, "") == "none"
        if run_together and split != "none":
            raise InvalidInput(
                "assemble_with='None' runs the records' outputs together with nothing between "
                "them; a batch job writes each record's output on a line of its own: give "
                "assemble_with='Line'"
            )
        request = TransformRequest.from_dict(
            {
                "model": self.model_name,
                "input": _text(data),
                "output": self.output_path,
                "content_type": content_type,
                "header": header,
                "compression_type": None if compression_type is None else "gzip",
                "split_type": split,
                "batch_strategy": _spelled(self.strategy, "multi-record"),
                "max_payload_mb": self.max_payload,
                "join_source": _spelled(join_source, "none"),
                "input_filter": input_filter,
                "output_filter": output_filter,
                "workers": self.instance_count,
                "max_concurrent_transforms": self.max_concurrent_transforms,
                "max_errors": self.max_errors,
                "overwrite": self.overwrite,
                "executor": self.executor,
                "address": self.address,
            }
        )
        self.latest_transform_job = self._get_platform().batch.submit(
            request, job_name, base_name=self.base_transform_job_name
        )
        if wait:
            self.wait(logs=logs)
        return self

    def _print_log(self) -> None:
        """The latest job's log, printed; a log that cannot be read is a warning, never in
        place of the job's own outcome."""
        assert self.latest_transform_job is not None
        try:
            print(self._get_platform().jobs.logs(self.latest_transform_job.name))
        except ModelyardError as exc:
            warnings.warn(f"the job's log could not be read: {exc.message}", stacklevel=3)

    def wait(self, logs: bool = True, timeout_s: float | None = None) -> Job:
        """Block until the latest job ends, as the SDK's ``Transformer.wait(logs=True)``; with
        ``logs``, print the job's log once it ends (before the error, when it did not
        complete, as its log says why). ``timeout_s``: return the job as it is after that.

        Raises:
            ValueError: no job yet (as the SDK's "No transform job available").
            InvalidInput: ``logs`` is not True or False.
            JobFailed: the job failed or was stopped (it can be resumed).
        """
        from modelyard.services.jobs import failure_of

        if not isinstance(logs, bool):
            raise InvalidInput(f"logs must be True or False, got {logs!r}")
        job = self._get_platform().jobs.wait(self._latest_name(), timeout_s)
        self.latest_transform_job = job
        if job.status.finished:
            self.counts_ = BatchCounts.from_metrics(job.metrics)
            if logs:
                self._print_log()
            failed = failure_of(job)
            if failed is not None:
                raise failed
        return job

    def stop_transform_job(self, wait: bool = True) -> None:
        """Stop the latest job, as the SDK's ``Transformer.stop_transform_job``; with
        ``wait``, return once it has ended (Stopped, its finished outputs kept; it can be
        resumed), without raising for the stop.

        Raises:
            ValueError: no job yet. Conflict: the job has already ended.
        """
        name = self._latest_name()
        platform = self._get_platform()
        self.latest_transform_job = platform.jobs.stop(name)
        if wait:
            self.latest_transform_job = job = platform.jobs.wait(name)
            self.counts_ = BatchCounts.from_metrics(job.metrics)

    def _latest_name(self) -> str:
        if self.latest_transform_job is None:
            raise ValueError("No transform job available: call transform() first")
        return self.latest_transform_job.name


def _built() -> Platform:
    from modelyard.bootstrap import build

    return build()


def _check_unhonoured(
    output_kms_key: object, volume_kms_key: object, tags: object, env: object
) -> None:
    """Refuse, by name, the SDK's constructor arguments that would mean something here but
    cannot be done (an empty ``tags`` or ``env`` asks for nothing, and is taken)."""
    why = {
        "output_kms_key": (
            output_kms_key,
            "outputs are not encrypted with a KMS key here; they are written as the output "
            "location stores them (a bucket's default encryption applies): leave it out",
        ),
        "volume_kms_key": (
            volume_kms_key,
            "the job runs in worker processes on this machine, with no volume of its own to "
            "encrypt: leave it out",
        ),
        "tags": (
            tags,
            "a batch job has no tags here; tag the model version instead "
            "(registry.set_tags), or leave it out",
        ),
        "env": (
            env,
            "the model runs inside modelyard's worker processes, not in a container started "
            "for the job, so there is no environment to set for it: leave it out",
        ),
    }
    for name, (given, reason) in why.items():
        if given is None or (name in ("tags", "env") and _empty(given)):
            continue
        raise InvalidInput(f"{name} cannot be honoured: {reason}")


def _empty(value: object) -> bool:
    return isinstance(value, Mapping | Sequence) and not isinstance(value, str) and not value


def _check_concurrency(count: object) -> None:
    """Check the SDK's ``max_concurrent_transforms`` (None or 0: not set, as in SageMaker)."""
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise InvalidInput(
            f"max_concurrent_transforms must be a whole number of 0 or more, got {count!r}"
        )


def _text(path: str | PathLike[str]) -> str:
    """A path as text (a ``pathlib.Path`` is a path; anything else is left for the request's
    check to refuse by name)."""
    return os.fspath(path) if isinstance(path, PathLike) else path


#: The SDK's ``accept`` values that name each input format's outputs.
_ACCEPTS = {
    "text/csv": ("text/csv",),
    "application/jsonlines": ("application/jsonlines", "application/json"),
    "application/x-parquet": ("application/x-parquet",),
}


def _check_sdk_arguments(
    data_type: object, compression: object, capture: object, wait: object, logs: object
) -> None:
    """Refuse, by name, the SDK's ``transform`` arguments a batch job cannot honour."""
    if data_type == "ManifestFile":
        raise InvalidInput(
            "data_type='ManifestFile' is not supported: give data a file, a folder or a glob, "
            "with data_type='S3Prefix'"
        )
    if data_type != "S3Prefix":
        raise InvalidInput(f"data_type must be 'S3Prefix' or 'ManifestFile', got {data_type!r}")
    if compression is not None and not (
        isinstance(compression, str) and compression.lower() == "gzip"
    ):
        raise InvalidInput(f"compression_type must be 'Gzip' or None, got {compression!r}")
    if capture is not None:
        raise InvalidInput(
            "batch_data_capture_config is not supported: a batch job's inputs and outputs are "
            "its input and output files"
        )
    for name, value in (("wait", wait), ("logs", logs)):
        if not isinstance(value, bool):
            raise InvalidInput(f"{name} must be True or False, got {value!r}")


def _check_accept(accept: object, content_type: object) -> None:
    """``accept`` (the outputs' format) must be the inputs' format: outputs are written in it.

    Raises:
        InvalidInput: ``accept`` is not a text, is given without ``content_type`` (the
            inputs' format is not known yet), or names another format.
    """
    if accept is None:
        return
    if not isinstance(accept, str):
        raise InvalidInput(f"accept must be a media type, got {accept!r}")
    if content_type is None:
        raise InvalidInput(
            f"accept={accept!r} needs content_type: a batch job writes its outputs in its "
            "inputs' format, so give content_type (the same) too, or leave accept out"
        )
    media = accept.split(";", 1)[0].strip().lower()
    if media not in _ACCEPTS.get(str(content_type), ()):
        raise InvalidInput(
            f"accept={accept!r} cannot be honoured: a batch job writes its outputs in its "
            f"inputs' format ({content_type}); give accept={content_type!r} or leave it out"
        )


def _check_max_payload(mb: object) -> None:
    """Check the SDK's ``max_payload`` by its own name (the request calls it ``max_payload_mb``,
    which the caller never wrote)."""
    if mb is None:
        return
    if isinstance(mb, bool) or not isinstance(mb, int | float):
        raise InvalidInput(f"max_payload must be a number of MB, got {mb!r}")
    if not 0 < mb <= MAX_PAYLOAD_MB:
        raise InvalidInput(
            f"max_payload must be more than 0 and at most {MAX_PAYLOAD_MB:g} (MB), got {mb!r}"
        )


def _check_instances(count: object, instance_type: object) -> None:
    """Check the SDK's ``instance_count`` (worker processes here) and ``instance_type`` (None:
    not given), and say with a warning that a cloud instance type is not used."""
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        keyword = "; output_path goes as a keyword" if isinstance(count, str) else ""
        raise InvalidInput(
            f"instance_count must be a whole number of 1 or more, got {count!r}{keyword}"
        )
    if instance_type is None:
        return
    if not isinstance(instance_type, str) or not instance_type.strip():
        raise InvalidInput(f"instance_type must be a name, got {instance_type!r}")
    if instance_type not in LOCAL_INSTANCE_TYPES:
        warnings.warn(
            f"instance_type {instance_type!r} is not used: the job runs in worker processes "
            "on this machine (instance_count of them), or on Ray with executor='ray'",
            UserWarning,
            stacklevel=3,
        )
