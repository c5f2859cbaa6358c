"""The columnar fast path for CSV blocks of plain numbers: pyarrow parses, numpy feeds the
model, :func:`modelyard.codecs.payloads.encode` writes, with no Python object per value.

It writes the same bytes as the generic path (:mod:`.csv_records`), because it only takes the
blocks where both read the same numbers, and hands every other block back:

- only bytes that spell plain numbers (digits, ``.``, ``e``, ``+``, ``-``, commas, line ends):
  no quotes, spaces, ``nan`` or ``inf`` words, which the generic path reads by its own rules;
  within those, pyarrow and ``float()`` accept the same tokens and round them the same
  (correctly: both use shortest round-trip parsing), and an empty field is missing (NaN) in both;
- no infinity after parsing (a plain numeral that overflows, which the generic path refuses);
- every row as wide as the first and as the model's signature, and every filter index there;
- the model answers numbers (then ``encode`` of the block is the records' lines, in order).

A block it hands back is run by the generic path, which reports its bad records one by one.
"""

from __future__ import annotations

import numpy as np

from modelyard.batch.arrowcols import fill_float64
from modelyard.batch.csv_records import CsvRecords
from modelyard.batch.filters import FilterError
from modelyard.batch.lines import Block
from modelyard.batch.sink import RECORD_ERRORS, Sink
from modelyard.codecs import payloads
from modelyard.codecs.text_rows import text_features

__all__ = ["fast_applies", "fast_block"]

_PLAIN = b"0123456789.,eE+-\r\n"
_ARROW_BLOCK = 512 * 1024


def fast_applies(records: CsvRecords) -> bool:
    """Whether a file's blocks may take the fast path at all: not for a model taking text,
    whose fields the fast path would read as numbers (codes such as 1, 2 are text to it)."""
    return (
        records.model.handler is None
        and not records.single
        and records.output_filter is None
        and text_features(records.signature) is None
    )


def fast_block(records: CsvRecords, sink: Sink, block: Block, header: bool) -> bool:
    """Predict a block the columnar way; False (nothing written) when it does not apply."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    data = block.data
    if header and block.line == 0:
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    if data.translate(None, _PLAIN):
        return False
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return False
    first = data[: data.find(b"\n")] if b"\n" in data else data
    width = first.count(b",") + 1
    names = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            # Arrow parses a block at a time: 512 KiB blocks stay in cache and parse ~3x
            # faster than one block of the whole payload (measured, 30 float columns).
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=_ARROW_BLOCK
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.float64()), null_values=[""]
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return False  # a ragged row, an odd token: the generic path names the line
    if table.num_rows == 0:
        return True  # blank lines only: no records on either path
    try:
        columns = _columns(records, width)
    except (FilterError, IndexError):
        return False
    signature = records.signature
    if signature is not None and signature.inputs and len(columns) != len(signature.inputs):
        return False
    rows = np.empty((table.num_rows, len(columns)), dtype=np.float64)
    for j, c in enumerate(columns):
        fill_float64(rows[:, j], table.column(c).chunks)
    if np.isinf(rows).any():
        return False
    try:
        predictions = records.model.predict(rows)
    except RECORD_ERRORS:
        return False
    if predictions.dtype.kind not in "fiub":
        return False
    out = payloads.encode(predictions, payloads.CSV)
    if records.join:
        lines = [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]
        if len(lines) != len(predictions):
            return False
        answers = out.split(b"\n")
        out = b"\n".join(map(b",".join, zip(lines, answers, strict=False))) + b"\n"
    rounded, first_row = records.model.take_rounded()
    if rounded:
        sink.note_rounded(rounded, _line_of(block, data, first_row) if sink.rounded == 0 else 0)
    n = len(predictions)
    sink.rows_in += n
    sink.fast_rows += n
    sink.write(out, n)
    return True


def _line_of(block: Block, data: bytes, row: int) -> int:
    """The line (within the unit) of record ``row`` of ``data``, the block less its header."""
    line = block.line + block.data.count(b"\n", 0, len(block.data) - len(data))
    for number, text in enumerate(data.split(b"\n")):
        if text.strip():
            if row == 0:
                return line + number
            row -= 1
    return line


def _columns(records: CsvRecords, width: int) -> list[int]:
    columns = list(range(width))
    if records.input_filter is not None:
        columns = records.input_filter.columns(width)
    if records.plan.columns is not None:
        columns = [columns[c] for c in records.plan.columns]
    return columns
