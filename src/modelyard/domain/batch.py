"""Batch transform requests: what a batch job reads, how it splits and joins records, and where
its predictions go. Field names and meanings follow SageMaker's CreateTransformJob (its
``ContentType``, ``SplitType``, ``BatchStrategy``, ``MaxPayloadInMB``, ``DataProcessing``)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from modelyard.errors import InvalidInput

#: The largest ``max_payload_mb`` a request may give.
MAX_PAYLOAD_MB = 1024.0


class BatchFormat(enum.StrEnum):
    """The format of the input files (and, unless asked otherwise, of the output files)."""

    CSV = "text/csv"
    JSONLINES = "application/jsonlines"
    PARQUET = "application/x-parquet"

    @classmethod
    def parse(cls, value: object, split: object = "line") -> BatchFormat:
        """A content type as SageMaker's CreateTransformJob takes it: parameters
        (``; charset=utf-8``) and case aside, and ``application/json`` split by line (each
        line a JSON record, as the SageMaker SDK's examples write it) read as JSON Lines.

        Raises:
            InvalidInput: another type, or ``application/json`` not split by line.
        """
        text = str(value.value if isinstance(value, enum.Enum) else value)
        media = text.split(";", 1)[0].strip().lower()
        if media in ("application/json", "application/x-jsonlines", "application/jsonl"):
            by_line = str(split.value if isinstance(split, enum.Enum) else split).lower()
            if media == "application/json" and by_line != "line":
                raise InvalidInput(
                    "content-type application/json is read a record a line (JSON Lines): give "
                    "split-type Line, or application/jsonlines"
                )
            return cls.JSONLINES
        try:
            return cls(media)
        except ValueError:
            allowed = ", ".join(v.value for v in cls)
            raise InvalidInput(
                f"invalid content-type {text!r}: use one of {allowed} (or application/json "
                "split by line)"
            ) from None


class SplitType(enum.StrEnum):
    """How an input file is cut into records: by line, or not at all (one record a file)."""

    LINE = "line"
    NONE = "none"


class BatchStrategy(enum.StrEnum):
    """How many records go into one model call: as many as fit ``max_payload_mb``, or one."""

    MULTI_RECORD = "multi-record"
    SINGLE_RECORD = "single-record"


class Compression(enum.StrEnum):
    """How the input files are compressed (SageMaker's ``CompressionType``): ``gzip``, every
    one of them (a ``.gz`` name is read as gzip whatever this says)."""

    GZIP = "gzip"


class BatchExecutor(enum.StrEnum):
    """Where a batch job's work units run: worker processes on this machine, or a Ray cluster
    (a local one started for the job when no address is given)."""

    LOCAL = "local"
    RAY = "ray"


class JoinSource(enum.StrEnum):
    """``input``: each output record holds its input record beside its prediction."""

    NONE = "none"
    INPUT = "input"


@dataclass(frozen=True, slots=True)
class TransformRequest:
    """One batch transform, as the CLI, the Python ``Transformer`` and a schedule give it.

    ``model`` is a model reference (``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``), resolved to
    one version when the job is submitted. ``input`` is a file, a folder or a glob, local or any
    fsspec URL; ``output`` a folder (local or URL) that receives one ``<input name>.out`` per
    input file (Parquet input: ``<input name>.out.parquet``). ``content_type`` None means
    "from the file extension". ``header`` None means "CSV files have no header" unless the
    first line is the model signature's column names. ``workers`` None means one per core.
    ``max_concurrent_transforms`` (CreateTransformJob's ``MaxConcurrentTransforms``, model
    calls at once on each instance, a worker here; None or 0: not set) multiplies them: see
    :attr:`concurrency`. ``executor`` ``ray`` runs the work units on Ray (``address``: a
    ``ray://`` cluster; None starts a local Ray); the outputs are the same bytes.
    ``compression_type`` ``gzip`` says every input is gzip (each must then be named ``….gz``,
    which is how one is read as gzip).
    """

    model: str
    input: str
    output: str
    content_type: BatchFormat | None = None
    header: bool | None = None
    compression_type: Compression | None = None
    split_type: SplitType = SplitType.LINE
    batch_strategy: BatchStrategy = BatchStrategy.MULTI_RECORD
    max_payload_mb: float = 6.0
    join_source: JoinSource = JoinSource.NONE
    input_filter: str | None = None
    output_filter: str | None = None
    workers: int | None = None
    max_concurrent_transforms: int | None = None
    max_errors: int = 0
    overwrite: bool = False
    executor: BatchExecutor = BatchExecutor.LOCAL
    address: str | None = None

    def __post_init__(self) -> None:
        """Refuse a value of the wrong type, naming the field: the Python API passes what its
        caller gave (``max_errors=None`` failed deep inside with a TypeError, and
        ``max_errors=1.5`` or ``overwrite="yes"`` were taken).

        Raises:
            InvalidInput: naming the field and the value.
        """
        for name in ("model", "input", "output"):
            if not isinstance(getattr(self, name), str):
                raise InvalidInput(f"{name} must be a text, got {getattr(self, name)!r}")
        for name in ("input_filter", "output_filter", "address"):
            if not isinstance(getattr(self, name), str | None):
                raise InvalidInput(f"{name} must be a text, got {getattr(self, name)!r}")
        for name in ("header", "overwrite"):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (name == "header" and value is None):
                raise InvalidInput(f"{name} must be True or False, got {value!r}")
        for name in ("workers", "max_concurrent_transforms", "max_errors"):
            value = getattr(self, name)
            if (value is not None or name == "max_errors") and not _whole(value):
                raise InvalidInput(f"{name} must be a whole number, got {value!r}")
        payload = self.max_payload_mb
        if isinstance(payload, bool) or not isinstance(payload, int | float):
            raise InvalidInput(f"max_payload_mb must be a number, got {payload!r}")

    def concurrency(self, cores: int | None = None) -> int | None:
        """How many work units run at once (worker processes, or Ray tasks); None: one per
        core (or per CPU of the Ray cluster).

        SageMaker runs ``max_concurrent_transforms`` model calls at once on each of its
        instances, so ``workers * max_concurrent_transforms`` in all; a worker here makes one
        call at a time, so that many workers. With ``max_concurrent_transforms`` alone, this
        machine is the one instance. ``cores`` (local workers: this machine's) holds each
        instance's share to that many: SDK code passes 16-100, meant as calls inside one
        container, and each worker here is a process that loads the model.
        """
        per_worker = self.max_concurrent_transforms or None  # 0 is "not set", as in SageMaker
        if per_worker is None:
            return self.workers
        if cores is not None:
            per_worker = min(per_worker, cores)
        return (self.workers or 1) * per_worker

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (enums as their values)."""
        return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformRequest:
        """The inverse of :meth:`to_dict`; unknown keys are ignored (older job records)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("content_type") is not None:
            values["content_type"] = BatchFormat.parse(
                values["content_type"], values.get("split_type") or SplitType.LINE
            )
        for key, kind in (
            ("compression_type", Compression),
            ("split_type", SplitType),
            ("batch_strategy", BatchStrategy),
            ("join_source", JoinSource),
            ("executor", BatchExecutor),
        ):
            if values.get(key) is not None:
                try:
                    values[key] = kind(values[key])
                except ValueError:
                    allowed = ", ".join(v.value for v in kind)
                    raise InvalidInput(
                        f"invalid {key.replace('_', '-')} {values[key]!r}: use one of {allowed}"
                    ) from None
        return cls(**values)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """How far a batch job got: rows read, written and failed; input files done of all; and
    how many values lost precision when cast to the model's float32 input type, with where
    the first of them is (``file, line n``; set in the final counts only, not a metric)."""

    rows_in: int = 0
    rows_out: int = 0
    rows_failed: int = 0
    files_done: int = 0
    files_total: int = 0
    values_rounded: int = 0
    first_rounded: str = field(default="", compare=False)

    def to_metrics(self) -> dict[str, float]:
        """As a job's ``metrics`` (the job record's numbers)."""
        return {
            f"batch.{f.name}": float(getattr(self, f.name))
            for f in fields(self)
            if f.name != "first_rounded"
        }

    @classmethod
    def from_metrics(cls, metrics: dict[str, float]) -> BatchCounts:
        names = {f.name for f in fields(cls)} - {"first_rounded"}
        values: dict[str, Any] = {
            k.removeprefix("batch."): int(v)
            for k, v in metrics.items()
            if k.removeprefix("batch.") in names
        }
        return cls(**values)

    def rounding_note(self) -> str:
        """The job's one line about values that lost precision as float32 ("" when none)."""
        if not self.values_rounded:
            return ""
        first = f"; first: {self.first_rounded}" if self.first_rounded else ""
        return (
            f"{self.values_rounded:,} value{'s' if self.values_rounded != 1 else ''} lost "
            "precision when cast to float32 "
            f"(the model's input type){first}"
        )
