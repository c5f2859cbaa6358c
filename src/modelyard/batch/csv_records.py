"""CSV records, the generic way: each payload is what an endpoint would be sent, and each
record's output what it would answer.

A payload (several lines up to ``max_payload_mb``, or one line with ``single-record``) is
decoded by :func:`modelyard.codecs.payloads.decode` (or the handler's ``input_fn``),
predicted, and written by :func:`modelyard.codecs.payloads.encode` (or ``output_fn``). When a
payload fails, its records are run one by one, so that the bad ones are reported (file, line,
reason) and the good ones still get their predictions.

Blank lines are no records (the endpoint skips them too). With a header, the file's first line
is skipped. ``split_type=line`` cuts at every newline, as SageMaker does: a quoted field cannot
hold one. The input filter picks columns of the raw row (SageMaker's order: filter, predict,
join with the unfiltered row, then the output filter); the join writes the input line as it
was, then the prediction's columns.
"""

from __future__ import annotations

from typing import Any

from modelyard.batch.csvtext import csv_fields, csv_line
from modelyard.batch.filters import Filter, FilterError, parse_filter
from modelyard.batch.lines import Block
from modelyard.batch.model import BatchModel
from modelyard.batch.plan import FilePlan
from modelyard.batch.sink import RECORD_ERRORS, Sink, reason
from modelyard.codecs import payloads
from modelyard.domain.batch import BatchStrategy, JoinSource, TransformRequest
from modelyard.errors import InvalidPayload, ModelFailed

__all__ = ["CsvRecords", "split_records"]

CSV = payloads.CSV

Record = tuple[int, bytes]  # (line within the unit, the line without its end)


def split_records(block: Block, skip_header: bool) -> list[Record]:
    """The records of a block: its non-blank lines (the first skipped for a header)."""
    lines = block.data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    first = block.line
    return [
        (first + i, line[:-1] if line.endswith(b"\r") else line)
        for i, line in enumerate(lines)
        if line.strip() and not (skip_header and first + i == 0)
    ]


class CsvRecords:
    """Predicts the CSV records of one file's units."""

    def __init__(self, model: BatchModel, request: TransformRequest, plan: FilePlan) -> None:
        self.model = model
        self.signature = model.spec.signature
        self.plan = plan
        self.input_filter = parse_filter(request.input_filter) if request.input_filter else None
        self.output_filter: Filter | None = (
            parse_filter(request.output_filter) if request.output_filter else None
        )
        self.join = request.join_source is JoinSource.INPUT
        self.single = request.batch_strategy is BatchStrategy.SINGLE_RECORD
        self.per_record = self.join or self.output_filter is not None
        self.reshape = self.input_filter is not None or plan.columns is not None

    def block(self, sink: Sink, block: Block, header: bool) -> None:
        """Predict the records of a block (one payload, or one each with single-record);
        ``header``: the block's unit starts the file, whose first line is a header."""
        records = split_records(block, header)
        if self.single or (self.per_record and self.model.handler is not None):
            for record in records:
                self.payload(sink, [record])
        elif records:
            self.payload(sink, records)

    def payload(self, sink: Sink, records: list[Record]) -> None:
        """Predict one payload; on failure, each record alone."""
        sink.rows_in += len(records)
        try:
            out = self.predict(records)
        except RECORD_ERRORS as exc:
            if len(records) == 1:
                sink.bad(records[0][0], reason(exc))
                return
            for record in records:
                try:
                    one = self.predict([record])
                except RECORD_ERRORS as exc_one:
                    sink.bad(record[0], reason(exc_one))
                else:
                    sink.write(one, 1)
                    sink.note_rounded(self.model.take_rounded()[0], record[0])
            return
        sink.write(out, len(records))
        count, first = self.model.take_rounded()
        if count:
            sink.note_rounded(count, records[first][0])

    def predict(self, records: list[Record]) -> bytes:
        """The output bytes of a payload of records.

        Raises:
            One of ``RECORD_ERRORS`` when a record is bad or the model fails on the payload.
        """
        lines = [line for _, line in records]
        body = b"\n".join(map(self.model_line, lines) if self.reshape else lines)
        model = self.model
        rows: Any  # an array, or a DataFrame for a model taking text
        if model.input_fn:
            rows = model.run_input_fn(body, CSV)
        else:
            rows = payloads.decode(body, CSV, self.signature)
            if len(rows) != len(lines):
                raise InvalidPayload(f"{len(lines)} lines read as {len(rows)} rows")
        predictions = model.predict(rows)
        if model.output_fn:
            out = model.run_output_fn(predictions, CSV)
            return out if not out or out.endswith(b"\n") else out + b"\n"
        if not self.per_record:
            return payloads.encode(predictions, CSV)
        if len(predictions) != len(lines):
            raise ModelFailed(f"{len(predictions)} predictions for {len(lines)} records")
        return b"".join(
            self.output_line(line, payloads.encode(predictions[i : i + 1], CSV))
            for i, line in enumerate(lines)
        )

    def model_line(self, line: bytes) -> bytes:
        """The line the model is sent: the input filter's columns, in the features' order."""
        fields: list[str] = csv_fields(line)
        if self.input_filter is not None:
            fields = self.input_filter.row(fields)
        if self.plan.columns is not None:
            if len(fields) < len(self.plan.columns):
                raise FilterError(f"the row has {len(fields)} columns, the header more")
            fields = [fields[c] for c in self.plan.columns]
        return csv_line(list(fields))[:-1]

    def output_line(self, line: bytes, prediction: bytes) -> bytes:
        """One record's output line: the prediction, joined and filtered as asked."""
        if self.output_filter is None:
            return line + b"," + prediction if self.join else prediction
        fields = (csv_fields(line) if self.join else []) + csv_fields(prediction.rstrip(b"\n"))
        return csv_line(self.output_filter.row(fields))
