"""Planning a job: each input's format, outputs, CSV header, and work units, with the checks
that need a look at the data, done before any work starts.

A look at each file's first record refuses, naming the file (and line), what would make every
record bad: a column count that is not the model's, a header that does not name its features,
a JSON record already holding the join's output field, a Parquet file without the feature
columns. Anything subtler is left to the record path, which reports bad records one by one.

CSV headers: ``header=True`` skips each file's first line; ``header=None`` skips it when it is
the signature's feature names, in any order (before or after the input filter). A header
naming the features in another order puts the columns in the signature's order.
"""

from __future__ import annotations

from dataclasses import replace

from modelyard.batch.checks import output_names
from modelyard.batch.csvtext import csv_fields
from modelyard.batch.filters import Filter, FilterError, parse_filter
from modelyard.batch.inputs import InputFile, detect_format, open_text, open_url
from modelyard.batch.plan import FilePlan, WorkUnit, cut_rows, cut_text, file_key
from modelyard.domain.batch import BatchFormat, SplitType, TransformRequest
from modelyard.domain.signature import Signature
from modelyard.errors import InvalidInput, InvalidPayload, ModelyardError, SignatureMismatch

__all__ = ["plan_files"]

_PEEK = 1 << 20


def plan_files(
    request: TransformRequest,
    inputs: list[InputFile],
    signature: Signature | None,
    digest: str,
    unit_bytes: int,
) -> tuple[list[FilePlan], list[list[WorkUnit]]]:
    """The plan of each file and its units, in input order.

    Raises:
        InvalidInput, SignatureMismatch: a file cannot be read as the model's input (the
            message names it).
    """
    pick = parse_filter(request.input_filter) if request.input_filter else None
    plans: list[FilePlan] = []
    units: list[list[WorkUnit]] = []
    for index, file in enumerate(inputs):
        fmt = detect_format(file, request.content_type)
        output, errors = output_names(file, fmt)
        plan = FilePlan(index, file, fmt, output, errors, False, None, file_key(digest, file))
        try:
            if fmt is BatchFormat.PARQUET:
                from modelyard.batch.parquet_records import (
                    feature_columns,
                    open_parquet,
                    row_groups,
                )

                with open_url(file.url) as handle:
                    parquet = open_parquet(handle)
                    feature_columns(parquet.schema_arrow.names, signature, pick)
                    units.append(cut_rows(plan, row_groups(parquet), unit_bytes))
            else:
                if request.split_type is SplitType.LINE:
                    lines = _first_lines(file)
                    if fmt is BatchFormat.CSV:
                        plan = _csv(plan, lines, request, signature, pick)
                    else:
                        _json(lines, request, signature)
                units.append(cut_text(plan, request, unit_bytes))
        except (InvalidInput, SignatureMismatch) as exc:
            named = exc.message if exc.message.startswith(file.url) else f"{file.url}: {exc}"
            raise type(exc)(named) from None
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise InvalidInput(f"cannot read {file.url}: {exc}") from None
        plans.append(plan)
    return plans, units


def _first_lines(file: InputFile) -> list[tuple[int, bytes]]:
    """The first non-blank lines (1-based numbers) in the file's first MiB."""
    with open_text(file.url, file.gzipped) as stream:
        head = stream.read(_PEEK)
    cut = len(head) == _PEEK
    head = head.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark is no part of a name
    lines = head.split(b"\n")
    if cut and len(lines) > 1:
        lines.pop()  # cut short
    return [(i + 1, line.rstrip(b"\r")) for i, line in enumerate(lines) if line.strip()][:2]


def _csv(
    plan: FilePlan,
    lines: list[tuple[int, bytes]],
    request: TransformRequest,
    signature: Signature | None,
    pick: Filter | None,
) -> FilePlan:
    if not lines:
        return plan
    names = signature.feature_names if signature is not None else None
    try:
        first = [f.strip() for f in csv_fields(lines[0][1])]
        picked = pick.row(first) if pick is not None else first
    except (InvalidPayload, FilterError):
        return plan  # the record path reports it
    header = request.header
    if header is None:
        header = (
            lines[0][0] == 1
            and names is not None
            and sorted(names)
            in (
                sorted(first),
                sorted(picked),
            )
        )
    columns = None
    if header and names is not None and picked != names:
        if sorted(picked) != sorted(names) or len(set(picked)) != len(picked):
            missing = [n for n in names if n not in picked]
            unexpected = [n for n in picked if n not in names]
            raise SignatureMismatch(
                f"the header does not name the model's features: missing {missing[:10]}, "
                f"unexpected {unexpected[:10]}"
            )
        columns = tuple(picked.index(n) for n in names)
    plan = replace(plan, header=bool(header), columns=columns)
    data = lines[1:] if header else lines[:1]
    expected = len(signature.inputs) if signature is not None and signature.inputs else None
    if data and expected is not None:
        number, line = data[0]
        try:
            fields = csv_fields(line)
            width = len(pick.row(fields) if pick is not None else fields)
        except (InvalidPayload, FilterError):
            return plan
        if width != expected:
            after = " after the input filter" if pick is not None else ""
            raise SignatureMismatch(
                f"line {number} has {width} columns{after}; the model takes {expected} features"
            )
    return plan


def _json(
    lines: list[tuple[int, bytes]], request: TransformRequest, signature: Signature | None
) -> None:
    if not lines:
        return
    from modelyard.batch.json_records import JsonInput

    number, line = lines[0]
    try:
        JsonInput(request, signature).rows(line)
    except SignatureMismatch as exc:
        raise SignatureMismatch(f"line {number}: {exc}") from None
    except InvalidInput as exc:
        if type(exc) is InvalidInput:  # the join's refusals, not a malformed record
            raise InvalidInput(f"line {number}: {exc}") from None
    except (ModelyardError, FilterError):
        return
