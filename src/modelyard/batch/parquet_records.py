"""Parquet records: a unit's row groups read in record batches, predicted column-wise, written
as Parquet.

The model's features are the columns named by its signature, in its order (any other columns
are ignored), or, when the signature names none, every column in the file's order; the input
filter picks columns first, by name (``$['a','b']``) or index (``$[1:]``). Numeric and boolean
columns are read as float64 and nulls as missing (NaN), as the endpoint reads a JSON record
holding the same values. A batch the model fails on is run row by row, so the bad rows are
reported (by record number, 1-based in the file) and left out.

Output (``<name>.out.parquet``): the predictions as a ``prediction`` column, or
``prediction_0``, ``prediction_1``, … for several outputs (the signature's output names when
it names them all); ``join_source=input`` writes the input columns first. The output filter
picks columns of that table, by name or index.
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np

from modelyard.batch.arrowcols import fill_float64
from modelyard.batch.filters import Filter, FilterError, parse_filter
from modelyard.batch.model import BatchModel
from modelyard.batch.sink import RECORD_ERRORS, Sink, reason
from modelyard.domain.batch import BatchStrategy, JoinSource, TransformRequest
from modelyard.domain.signature import Signature
from modelyard.errors import InvalidInput, SignatureMismatch

__all__ = ["ParquetRecords", "feature_columns", "open_parquet", "row_groups"]


def open_parquet(handle: IO[bytes]) -> Any:
    import pyarrow.parquet as pq

    return pq.ParquetFile(handle, pre_buffer=False, buffer_size=1 << 20)


def row_groups(parquet: Any) -> list[tuple[int, int]]:
    """(rows, uncompressed bytes) of each row group."""
    meta = parquet.metadata
    return [
        (meta.row_group(i).num_rows, meta.row_group(i).total_byte_size)
        for i in range(meta.num_row_groups)
    ]


def feature_columns(
    names: list[str], signature: Signature | None, pick: Filter | None
) -> list[int]:
    """The indexes of the model's feature columns among ``names``.

    Raises:
        SignatureMismatch: a named feature is missing, or the width differs.
        InvalidInput: the input filter does not fit the columns.
    """
    index = list(range(len(names)))
    if pick is not None:
        try:
            index = _pick(pick, names)
        except FilterError as exc:
            raise InvalidInput(
                f"the input filter {pick.text} does not fit the columns: {exc}"
            ) from None
    wanted = signature.feature_names if signature is not None else None
    if wanted:
        chosen = {names[i]: i for i in index}
        missing = [n for n in wanted if n not in chosen]
        if missing:
            raise SignatureMismatch(f"the file has no column for the features {missing[:10]}")
        return [chosen[n] for n in wanted]
    expected = len(signature.inputs) if signature is not None and signature.inputs else None
    if expected is not None and len(index) != expected:
        raise SignatureMismatch(
            f"the model takes {expected} features, the file has {len(index)} columns"
        )
    return index


def _pick(pick: Filter, names: list[str]) -> list[int]:
    if pick.uses_names:
        picked = pick.apply(dict(zip(names, range(len(names)), strict=True)))
        return list(picked.values()) if isinstance(picked, dict) else [picked]
    return pick.columns(len(names))


class ParquetRecords:
    """Predicts the rows of one Parquet file's units."""

    def __init__(self, model: BatchModel, request: TransformRequest) -> None:
        self.model = model
        self.input_filter = parse_filter(request.input_filter) if request.input_filter else None
        self.output_filter = parse_filter(request.output_filter) if request.output_filter else None
        self.join = request.join_source is JoinSource.INPUT
        self.single = request.batch_strategy is BatchStrategy.SINGLE_RECORD
        self._writer: Any = None

    def unit(self, sink: Sink, parquet: Any, start: int, end: int, limit: int) -> None:
        """Predict rows ``[start, end)`` (whole row groups) and write them to ``sink.out``."""
        groups, first, row = [], None, 0
        for i, (rows, _) in enumerate(row_groups(parquet)):
            if start <= row < end:
                groups.append(i)
                first = row if first is None else first
            row += rows
        columns = feature_columns(
            parquet.schema_arrow.names, self.model.spec.signature, self.input_filter
        )
        meta = parquet.metadata
        per_row = max(8, meta.serialized_size // max(1, meta.num_rows)) if meta.num_rows else 8
        if groups:
            per_row = max(
                per_row,
                sum(meta.row_group(g).total_byte_size for g in groups)
                // max(1, sum(meta.row_group(g).num_rows for g in groups)),
            )
        size = 1 if self.single else max(1, limit // per_row)
        at = start
        try:
            for batch in parquet.iter_batches(
                batch_size=size, row_groups=groups, use_threads=False
            ):
                self.batch(sink, batch, columns, at)
                at += batch.num_rows
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def batch(self, sink: Sink, batch: Any, columns: list[int], at: int) -> None:
        sink.rows_in += batch.num_rows
        rows = _features(batch, columns)
        keep = np.ones(batch.num_rows, dtype=bool)
        try:
            predictions = self.model.predict(rows)
        except RECORD_ERRORS as exc:
            if batch.num_rows == 1:
                sink.bad(at + 1, reason(exc))
                return
            parts = []
            for i in range(batch.num_rows):
                try:
                    parts.append(self.model.predict(rows[i : i + 1]))
                except RECORD_ERRORS as exc_one:
                    keep[i] = False
                    sink.bad(at + i + 1, reason(exc_one))
            if not parts:
                return
            predictions = np.concatenate(parts)
        if not keep.all():
            import pyarrow as pa

            batch = batch.filter(pa.array(keep))
        self._write(sink, batch, predictions)

    def _write(self, sink: Sink, batch: Any, predictions: np.ndarray) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        names, arrays = _prediction_columns(predictions, self.model.spec.signature)
        if self.join:
            clash = [n for n in names if n in batch.schema.names]
            if clash:
                raise InvalidInput(
                    f"the input already has a column {clash[0]!r}, where a "
                    "prediction would go; rename it, or do not join the input"
                )
            names, arrays = batch.schema.names + names, batch.columns + arrays
        table = pa.Table.from_arrays(arrays, names=names)
        if self.output_filter is not None:
            try:
                table = table.select(_pick(self.output_filter, table.schema.names))
            except FilterError as exc:
                raise InvalidInput(f"the output filter {self.output_filter.text}: {exc}") from None
        if self._writer is None:
            self._writer = pq.ParquetWriter(sink.out, table.schema)
        self._writer.write_table(table)
        sink.write(b"", table.num_rows)


def _features(batch: Any, columns: list[int]) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = np.empty((batch.num_rows, len(columns)), dtype=np.float64)
    for j, c in enumerate(columns):
        column = batch.column(c)
        kind = column.type
        if not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_null(kind)
        ):
            name = batch.schema.names[c]
            raise InvalidInput(f"column {name!r} holds {kind}, not numbers")
        cast = pc.cast(column, pa.float64())
        fill_float64(rows[:, j], cast.chunks if hasattr(cast, "chunks") else [cast])
    return rows


def _prediction_columns(
    predictions: np.ndarray, signature: Signature | None
) -> tuple[list[str], list[Any]]:
    import pyarrow as pa

    matrix = predictions.reshape(len(predictions), -1) if predictions.ndim != 1 else None
    width = 1 if matrix is None else matrix.shape[1]
    named = [c.name for c in signature.outputs] if signature is not None else []
    if len(named) == width and all(named):
        names = [str(n) for n in named]
    else:
        names = ["prediction"] if matrix is None else [f"prediction_{i}" for i in range(width)]
    if matrix is None:
        return names, [pa.array(predictions)]
    return names, [pa.array(np.ascontiguousarray(matrix[:, i])) for i in range(width)]
