"""Arrow helpers of the capture service: files of different configs as one schema, footer
time ranges, and writing one Parquet file whole or not at all."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.domain.capture import INPUT_PREFIX, METADATA_COLUMNS, OUTPUT_PREFIX
from modelyard.domain.durations import as_utc
from modelyard.errors import StorageNotWritable, StorageUnavailable
from modelyard.storage.urls import mask_url, redact

if TYPE_CHECKING:
    import pyarrow as pa


def _metadata_schema() -> pa.Schema:
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
        "int64": pa.int64(),
        "int32": pa.int32(),
        "float64": pa.float64(),
    }
    return pa.schema([(name, types[kind]) for name, kind in METADATA_COLUMNS.items()])


def _common_type(types: list[pa.DataType]) -> pa.DataType:
    import pyarrow as pa

    distinct = {t for t in types if not pa.types.is_null(t)}
    if not distinct:
        return pa.null()
    if len(distinct) == 1:
        return distinct.pop()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in distinct):
        return pa.float64()
    return pa.string()  # e.g. a field hashed since: its numbers read as text


def unify(tables: list[pa.Table]) -> pa.Table:
    """One table with every column any of ``tables`` has (see the module docstring)."""
    import pyarrow as pa

    schema = _metadata_schema()
    if not tables:
        return schema.empty_table()
    found: dict[str, list[pa.DataType]] = {name: [] for name in schema.names}
    for table in tables:
        for field in table.schema:
            found.setdefault(field.name, []).append(field.type)

    def rank(name: str) -> int:
        if name in METADATA_COLUMNS:
            return 0
        return 1 if name.startswith(INPUT_PREFIX) else 2 if name.startswith(OUTPUT_PREFIX) else 3

    names = sorted(found, key=rank)  # stable: first appearance within each group
    target = pa.schema(
        [(n, _common_type(found[n]) if found[n] else schema.field(n).type) for n in names]
    )
    parts = []
    for table in tables:
        arrays = [
            table[f.name].cast(f.type)
            if f.name in table.column_names
            else pa.nulls(table.num_rows, type=f.type)
            for f in target
        ]
        parts.append(pa.Table.from_arrays(arrays, schema=target))
    return pa.concat_tables(parts)


def time_range(meta: Any) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest ``time`` in a Parquet footer's statistics."""
    names = meta.schema.to_arrow_schema().names
    if "time" not in names:
        return None, None
    index = names.index("time")
    lows, highs = [], []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(index).statistics
        if stats is not None and stats.has_min_max:
            lows.append(stats.min)
            highs.append(stats.max)
    return (as_utc(min(lows)), as_utc(max(highs))) if lows else (None, None)


def write_parquet(table: pa.Table, out: str) -> None:
    """Write ``table`` to ``out``: a local path (whole or not at all: a temporary file renamed
    into place) or an fsspec URL (one upload).

    Raises:
        StorageNotWritable: the local file cannot be written; StorageUnavailable: the URL
            cannot be written (or its protocol's package is not installed).
    """
    import pyarrow.parquet as pq

    if "://" in out and not out.startswith("file://"):
        import fsspec

        try:
            with fsspec.open(out, "wb") as handle:
                pq.write_table(table, handle)
        except (OSError, ImportError, ValueError) as exc:  # no such protocol or its package
            raise StorageUnavailable(
                f"cannot write {mask_url(out)}: {redact(str(exc), out)}"
            ) from None
        return
    target = Path(out.removeprefix("file://")).expanduser()
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise StorageNotWritable(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
