"""Checks a batch transform passes before any work starts: the request itself, and the output
location (names free, folder writable).

Output names: ``<input name>.out`` for CSV and JSON Lines inputs (SageMaker's name), and
``<input name>.out.parquet`` for Parquet inputs, where a folder input's files are named by
their path below it (``day=1/part.csv`` gives ``day=1/part.csv.out``, in a folder ``day=1``
of the output folder, as SageMaker keeps an object's path below the prefix); a ``.gz``
suffix is dropped first, as the output is not compressed (``day.csv.gz`` gives
``day.csv.out``). Bad records of an input go
to ``<input name>.errors.jsonl`` (written only when there are some).
"""

from __future__ import annotations

import contextlib
import os
import uuid

from modelyard.batch.filters import parse_filter
from modelyard.batch.inputs import InputFile, detect_format
from modelyard.batch.location import Location, canonical, within
from modelyard.domain.batch import (
    MAX_PAYLOAD_MB,
    BatchFormat,
    JoinSource,
    SplitType,
    TransformRequest,
)
from modelyard.domain.signature import Signature
from modelyard.errors import InvalidInput, OutputExists, StorageUnavailable

__all__ = ["STATE_DIR", "check_output", "check_request", "output_names"]

#: The hidden folder, under the output folder, holding each running job's manifest and parts.
STATE_DIR = ".modelyard-batch"


def output_names(file: InputFile, fmt: BatchFormat) -> tuple[str, str]:
    """The output file's and the errors file's names for an input file."""
    stem = file.name[:-3] if file.gzipped else file.name
    suffix = ".out.parquet" if fmt is BatchFormat.PARQUET else ".out"
    return stem + suffix, stem + ".errors.jsonl"


def check_request(request: TransformRequest, signature: Signature | None = None) -> None:
    """Refuse a request that cannot run, whatever its inputs.

    Args:
        request: The request.
        signature: The model's signature, if known (reserved for checks against it).

    Raises:
        InvalidInput: a bad filter, a payload size or budget out of range, or options that do
            not go together (the message names the field).
    """
    if not 0 < request.max_payload_mb <= MAX_PAYLOAD_MB:
        raise InvalidInput(
            f"max_payload_mb must be more than 0 and at most {MAX_PAYLOAD_MB:g}, "
            f"got {request.max_payload_mb:g}"
        )
    if request.max_errors < 0:
        raise InvalidInput(f"max_errors must be 0 or more, got {request.max_errors}")
    if request.workers is not None and request.workers < 1:
        raise InvalidInput(f"workers must be 1 or more, got {request.workers}")
    mct = request.max_concurrent_transforms
    if mct is not None and mct < 0:
        raise InvalidInput(f"max_concurrent_transforms must be 0 or more, got {mct}")
    filters = [
        parse_filter(text, what)
        for text, what in (
            (request.input_filter, "input_filter"),
            (request.output_filter, "output_filter"),
        )
        if text
    ]
    if request.content_type is BatchFormat.CSV:
        for found in filters:
            if found.uses_names:
                raise InvalidInput(f"{found.text}: CSV columns are picked by index, not by name")
    if request.header is not None and request.content_type not in (None, BatchFormat.CSV):
        raise InvalidInput("header applies to CSV input only")
    if request.split_type is SplitType.NONE and (
        filters or request.join_source is JoinSource.INPUT
    ):
        raise InvalidInput(
            "with split_type=none each file is one record: filters and join_source=input "
            "need split_type=line"
        )


def check_output(
    request: TransformRequest, inputs: list[InputFile], job: str | None = None
) -> None:
    """Refuse an output location the job would overwrite or cannot write; writes nothing that
    stays.

    Args:
        request: The request (its ``output`` and ``overwrite``).
        inputs: The input files (from :func:`~modelyard.batch.inputs.list_inputs`).
        job: The job's name when resuming it: outputs it already finished are its own.

    Raises:
        InvalidInput: two inputs would write the same output, the output is a file, or it is
            the input folder; or an input's format is unknown.
        OutputExists: an output file already exists (unless ``request.overwrite``).
        StorageNotWritable: the output location cannot be written.
        StorageUnavailable: it cannot be reached.
    """
    output = Location(request.output)
    names: dict[str, InputFile] = {}
    for file in inputs:
        for name in output_names(file, detect_format(file, request.content_type)):
            if name in names:
                raise InvalidInput(
                    f"{names[name].url} and {file.url} would both write {name}; give "
                    "inputs with distinct names"
                )
            names[name] = file
    try:
        if output.exists() and not output.isdir():
            raise InvalidInput(f"the output {request.output} is a file; give a folder")
        if _holds_inputs(request, inputs):
            raise InvalidInput(
                f"the output folder {request.output} holds the input files or lies inside the "
                "input folder; write to a folder outside it"
            )
        if not request.overwrite:
            taken = [n for n in names if output.exists(n) and not _finished(output, job, n)]
            if taken:
                more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
                raise OutputExists(
                    f"{request.output.rstrip('/')}/{taken[0]}{more} already exist(s)",
                    allow="overwrite",
                )
        _probe(output)
    except OSError as exc:
        raise StorageUnavailable(f"cannot reach the output {request.output}: {exc}") from None


def _finished(output: Location, job: str | None, name: str) -> bool:
    """Whether job ``job`` (when resuming) wrote output ``name`` itself (``name`` may be in
    a folder: a nested input's output)."""
    return job is not None and output.exists(f"{STATE_DIR}/{job}/files/{name}.json")


def _probe(output: Location) -> None:
    """Prove ``output`` writable: make it, write an empty file, take both away again.

    Only what the probe made is taken away: its file, then each folder it created, deepest
    first, and only while empty (never a recursive delete: ``new/..`` once named the folder
    above, which the probe then deleted with everything in it).
    """
    made = _missing_folders(output)
    existed = output.local or output.exists()  # an object store's folder: taken away if new
    probe = f".modelyard-probe-{uuid.uuid4().hex[:12]}"
    try:
        output.makedirs()
        output.write_bytes(probe, b"")
    except OSError as exc:
        raise output.failure(exc, "") from None
    finally:
        output.remove(probe)
        for folder in made:
            try:
                os.rmdir(folder)  # refuses a folder that is not empty
            except FileNotFoundError:
                continue  # never made (makedirs failed below it)
            except OSError:
                break
        if not output.local and not existed:
            with contextlib.suppress(OSError, NotImplementedError):
                output.fs.rmdir(output.path())  # never recursive: empty, or left as it is


def _holds_inputs(request: TransformRequest, inputs: list[InputFile]) -> bool:
    """Whether the output is a folder holding input files, or lies inside the input folder
    the request names, compared as canonical locations (protocol included, links resolved),
    so that ``file:///in`` is ``/in`` and ``memory://in`` is the folder of
    ``memory:///in/a.csv``."""
    try:
        out = canonical(request.output)
        folders = {canonical(file.url.rstrip("/").rsplit("/", 1)[0]) for file in inputs}
        folder_input = Location(request.input).isdir()  # a glob names no folder
        if folder_input and within(out, canonical(request.input)):
            return True
    except (ValueError, ImportError) as exc:
        raise InvalidInput(f"cannot compare the output {request.output}: {exc}") from None
    return out in folders


def _missing_folders(output: Location) -> list[str]:
    """The local folders that making ``output`` will create, deepest first, as
    ``os.makedirs`` walks the path as written: ``a/new/..`` makes ``a/new`` (and ``..`` is
    no folder of its own: ``a`` exists). None on an object store, which has no folders."""
    if not output.local:
        return []
    path = output.path()
    written = (path if os.path.isabs(path) else os.path.join(os.getcwd(), path)).split(os.sep)
    missing = []
    for i in range(len(written), 1, -1):
        step = os.sep.join(written[:i])
        if written[i - 1] not in ("..", ".", "") and not os.path.exists(step):
            missing.append(step)
    return missing
