"""What a batch job will do, decided before any work: the files, their formats and outputs, and
the work units each is cut into. Everything here pickles, so a worker on another process or
machine gets it whole.

A work unit is a byte range of a text file (the lines that *start* in it, so that a line is
never cut and a split CSV or JSON Lines file is read once, in order), a run of row groups of a
Parquet file, or a whole file (gzip, which cannot be read from the middle, and
``split_type=none``). Units are about ``unit_bytes`` large: small enough that a resumed job
redoes little, large enough that their bookkeeping costs nothing.

Units and files are keyed by digests of the request (:func:`request_digest`), the input's
fingerprint and the unit's range: the manifest holds those keys, so a resumed job with the
same request and inputs finds its finished units, and any change (another model version, a
filter, an edited file) makes new keys instead of mixing old parts in.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.batch.inputs import InputFile
from modelyard.domain.batch import BatchFormat, SplitType, TransformRequest

if TYPE_CHECKING:
    from modelyard.batch.location import Location
    from modelyard.batch.model import ModelSource

__all__ = [
    "ENGINE_VERSION",
    "UNIT_BYTES",
    "FilePlan",
    "JobSpec",
    "WorkUnit",
    "done_path",
    "errors_path",
    "part_path",
    "request_digest",
]

#: Bumped when the engine's output for the same request changes, so old parts are not reused.
ENGINE_VERSION = 1
#: Work-unit size: a resumed job redoes at most one unit per worker.
UNIT_BYTES = 4 * 1024 * 1024
#: The request fields that do not change what is written (the output location is the job's).
#: Request fields that do not change an output byte (``compression_type`` only checks names:
#: a ``.gz`` name is what makes a file read as gzip).
_NOT_OUTPUT = (
    "workers",
    "max_concurrent_transforms",
    "max_errors",
    "overwrite",
    "executor",
    "address",
    "compression_type",
)


@dataclass(frozen=True, slots=True)
class FilePlan:
    """One input file and how it is read and written.

    Attributes:
        index: Its position among the job's files.
        file: The input.
        format: Its format.
        output: The output file's name in the output folder.
        errors: The bad-records file's name there.
        header: A CSV file whose first line is a header (skipped).
        columns: For a CSV file with a header naming the model's features in another order:
            the column of each feature (after the input filter); None keeps the order.
        key: The file's manifest key.
    """

    index: int
    file: InputFile
    format: BatchFormat
    output: str
    errors: str
    header: bool
    columns: tuple[int, ...] | None
    key: str


@dataclass(frozen=True, slots=True)
class WorkUnit:
    """A piece of one file: bytes ``[start, end)`` of a text file (the lines starting there),
    or rows ``[start, end)`` of a Parquet file (whole row groups)."""

    file: int
    index: int
    start: int
    end: int
    key: str

    @property
    def first(self) -> bool:
        return self.index == 0


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run units of one job.

    Attributes:
        model: Where the model comes from.
        request: The transform request.
        files: The files, by index.
        output: The output folder.
        state: The job's hidden folder (manifest and parts) under the output folder.
        fast_path: Use the columnar path for numeric CSV where it applies (off only to test
            that it writes the same bytes as the generic path).
        unit_bytes: The work-unit size the units were cut with.
    """

    model: ModelSource
    request: TransformRequest
    files: tuple[FilePlan, ...]
    output: Location
    state: Location
    fast_path: bool = True
    unit_bytes: int = UNIT_BYTES


def part_path(unit: WorkUnit) -> str:
    """A unit's output part, in the job's folder."""
    return f"parts/{unit.key}.out"


def errors_path(unit: WorkUnit) -> str:
    """A unit's bad records, in the job's folder."""
    return f"parts/{unit.key}.errors.jsonl"


def done_path(unit: WorkUnit) -> str:
    """A unit's done marker (its counts), in the job's folder."""
    return f"units/{unit.key}.json"


def request_digest(request: TransformRequest, artifact_digest: str, unit_bytes: int) -> str:
    """A digest of everything that decides the output bytes."""
    fields = {k: v for k, v in request.to_dict().items() if k not in _NOT_OUTPUT}
    fields.update(model=artifact_digest, unit_bytes=unit_bytes, engine=ENGINE_VERSION)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def file_key(digest: str, file: InputFile) -> str:
    return _key(digest, file.name, file.fingerprint)


def cut_text(plan: FilePlan, request: TransformRequest, unit_bytes: int) -> list[WorkUnit]:
    """The units of a CSV or JSON Lines file: byte ranges, or the whole file."""
    size = plan.file.size
    whole = plan.file.gzipped or request.split_type is SplitType.NONE or size <= unit_bytes
    bounds = [0, size] if whole else [*range(0, size, unit_bytes), size]
    return [
        WorkUnit(plan.index, i, start, end, _key(plan.key, str(start), str(end)))
        for i, (start, end) in enumerate(itertools.pairwise(bounds))
    ]


def cut_rows(plan: FilePlan, groups: list[tuple[int, int]], unit_bytes: int) -> list[WorkUnit]:
    """The units of a Parquet file from its row groups' (rows, bytes): runs of whole groups."""
    units: list[WorkUnit] = []
    start = row = size = 0
    for rows, nbytes in groups:
        row += rows
        size += nbytes
        if size >= unit_bytes:
            units.append(WorkUnit(plan.index, len(units), start, row, ""))
            start, size = row, 0
    if row > start or not units:
        units.append(WorkUnit(plan.index, len(units), start, row, ""))
    return [
        WorkUnit(u.file, u.index, u.start, u.end, _key(plan.key, str(u.start), str(u.end)))
        for u in units
    ]


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
