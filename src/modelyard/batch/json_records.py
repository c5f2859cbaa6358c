"""JSON Lines records: one JSON value a line, each answered as an endpoint answers it.

Each record (after the input filter) is what an ``application/json`` request would carry:
a row ``[x, …]``, a record ``{"name": x, …}`` (sent as the one-record list ``[{…}]``) or any
shape :func:`payloads.decode` takes, and
its output line is the endpoint's answer, ``{"predictions": […]}``. Records of a payload are
decoded one by one and predicted together (one model call per payload), then answered one by
one; a bad record is reported and the rest go on.

``join_source=input`` writes the input object with the answer under ``SageMakerOutput``, as
SageMaker does, but a record that already holds that field is refused (SageMaker overwrites
it silently); a record that is not an object (a row ``[x, …]``) is written as SageMaker
writes it, ``{"SageMakerInput": record, "SageMakerOutput": answer}``. The output filter
applies to the joined object (or to the answer). With a handler, a payload is the records'
lines joined by newlines, sent to ``input_fn`` as ``application/jsonlines``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from modelyard.batch.filters import parse_filter
from modelyard.batch.lines import Block
from modelyard.batch.model import BatchModel
from modelyard.batch.sink import RECORD_ERRORS, Sink, reason
from modelyard.codecs import payloads
from modelyard.domain.batch import BatchFormat, BatchStrategy, JoinSource, TransformRequest
from modelyard.domain.signature import Signature
from modelyard.errors import InvalidInput, InvalidPayload

__all__ = ["INPUT_KEY", "OUTPUT_KEY", "JsonInput", "JsonRecords", "dumps", "loads"]

_SHAPE_KEYS = {"instances", "inputs"}
#: Where a joined JSON record holds its prediction (SageMaker's name).
OUTPUT_KEY = "SageMakerOutput"
#: Where a joined JSON record that is not an object holds the input (SageMaker's name).
INPUT_KEY = "SageMakerInput"
JSON = payloads.JSON


def loads(line: bytes) -> Any:
    """One JSON value (NaN and Infinity tokens and big integers taken, as the endpoint does).

    Raises:
        InvalidPayload: malformed JSON.
    """
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:
            return json.loads(line)
        except (ValueError, RecursionError):
            raise InvalidPayload(f"malformed JSON: {exc}") from None


def dumps(value: Any) -> bytes:
    """Compact JSON; values orjson refuses (integers past 64 bits) through the json module."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, separators=(",", ":")).encode()


class JsonInput:
    """Reads one JSON record as the model's rows (the join's checks, the input filter)."""

    def __init__(self, request: TransformRequest, signature: Signature | None) -> None:
        self.signature = signature
        self.input_filter = parse_filter(request.input_filter) if request.input_filter else None
        self.join = request.join_source is JoinSource.INPUT

    def checked(self, line: bytes) -> Any:
        """A record's value, refused when the join cannot hold its prediction."""
        obj = loads(line)
        if self.join and isinstance(obj, dict) and OUTPUT_KEY in obj:
            raise InvalidInput(
                f"the record already holds {OUTPUT_KEY!r}, where its prediction would go; "
                "rename that field, or do not join the input"
            )
        return obj

    def rows(self, line: bytes) -> tuple[Any, Any]:
        """A record's value and the model's rows for it.

        Raises:
            InvalidInput: the join cannot hold the prediction; InvalidPayload,
                SignatureMismatch: the record is not rows the model takes; FilterError.
        """
        obj = self.checked(line)
        value = obj if self.input_filter is None else self.input_filter.apply(obj)
        if isinstance(value, dict) and not _SHAPE_KEYS & value.keys():
            body = b"[" + dumps(value) + b"]"  # one named record: the endpoint's records shape
        else:
            body = line if value is obj else dumps(value)
        return obj, payloads.decode(body, JSON, self.signature)


class JsonRecords:
    """Predicts the JSON Lines records of one file's units."""

    def __init__(self, model: BatchModel, request: TransformRequest) -> None:
        self.model = model
        self.input = JsonInput(request, model.spec.signature)
        self.output_filter = parse_filter(request.output_filter) if request.output_filter else None
        self.join = self.input.join
        self.single = request.batch_strategy is BatchStrategy.SINGLE_RECORD or (
            model.handler is not None and (self.join or self.output_filter is not None)
        )

    def block(self, sink: Sink, block: Block) -> None:
        """Predict the records of a block: one payload, or one each with single-record."""
        lines = block.data.split(b"\n")
        records = [(block.line + i, line) for i, line in enumerate(lines) if line.strip()]
        for group in [[r] for r in records] if self.single else [records]:
            if group:
                self.payload(sink, group)

    def payload(self, sink: Sink, records: list[tuple[int, bytes]]) -> None:
        sink.rows_in += len(records)
        if self.model.input_fn:
            self._handled(sink, records)
            return
        parsed: list[tuple[int, Any, Any]] = []
        for at, line in records:
            try:
                obj, rows = self.rows(line)
            except RECORD_ERRORS as exc:
                sink.bad(at, reason(exc))
            else:
                parsed.append((at, obj, rows))
        if not parsed:
            return
        try:
            predictions = self.model.predict(_joined([rows for _, _, rows in parsed]))
        except RECORD_ERRORS as exc:
            if len(parsed) == 1:
                sink.bad(parsed[0][0], reason(exc))
                return
            for at, obj, rows in parsed:  # each alone, to find the bad ones
                try:
                    one = self.model.predict(rows)
                    sink.write(self.output_line(obj, payloads.encode(one, JSON)), 1)
                    sink.note_rounded(self.model.take_rounded()[0], at)
                except RECORD_ERRORS as exc_one:
                    sink.bad(at, reason(exc_one))
            return
        count, first = self.model.take_rounded()
        start = 0
        for at, obj, rows in parsed:
            if count and start <= first < start + len(rows):
                sink.note_rounded(count, at)
            mine = predictions[start : start + len(rows)]
            start += len(rows)
            try:
                sink.write(self.output_line(obj, payloads.encode(mine, JSON)), 1)
            except RECORD_ERRORS as exc:
                sink.bad(at, reason(exc))

    def checked(self, line: bytes) -> Any:
        return self.input.checked(line)

    def rows(self, line: bytes) -> tuple[Any, Any]:
        return self.input.rows(line)

    def output_line(self, obj: Any, answer: bytes) -> bytes:
        """One record's output line from its answer."""
        if not self.join and self.output_filter is None:
            return answer + b"\n"
        value = orjson.loads(answer)
        if self.join:
            joined = obj if isinstance(obj, dict) else {INPUT_KEY: obj}
            value = {**joined, OUTPUT_KEY: value}
        if self.output_filter is not None:
            value = self.output_filter.apply(value)
        return dumps(value) + b"\n"

    def _handled(self, sink: Sink, records: list[tuple[int, bytes]]) -> None:
        try:
            out = self._handled_output(records)
        except RECORD_ERRORS as exc:
            if len(records) == 1:
                sink.bad(records[0][0], reason(exc))
                return
            for record in records:
                try:
                    sink.write(self._handled_output([record]), 1)
                except RECORD_ERRORS as exc_one:
                    sink.bad(record[0], reason(exc_one))
            return
        sink.write(out, len(records))

    def _handled_output(self, records: list[tuple[int, bytes]]) -> bytes:
        lines = [line for _, line in records]
        # With a handler, a join or an output filter runs record by record (``single``).
        obj = self.checked(lines[0]) if len(lines) == 1 else None
        rows = self.model.run_input_fn(b"\n".join(lines), BatchFormat.JSONLINES.value)
        predictions = self.model.predict(rows)
        if self.model.output_fn:
            out = self.model.run_output_fn(predictions, JSON)
            return out if not out or out.endswith(b"\n") else out + b"\n"
        if len(records) == 1 or len(predictions) != len(records):
            return self.output_line(obj, payloads.encode(predictions, JSON))
        return b"".join(
            self.output_line(None, payloads.encode(predictions[i : i + 1], JSON))
            for i in range(len(records))
        )


def _joined(parts: list[Any]) -> Any:
    """The records' rows as one: arrays stacked, or tables (a model taking text) concatenated."""
    if all(type(p) is np.ndarray for p in parts):
        return np.vstack(parts)
    import pandas as pd

    return pd.concat(parts, ignore_index=True)
