"""Arrow helpers of the capture service: files of different configs as one schema
(:func:`unify`), footer time ranges, and an export's file format (Parquet, CSV or JSON Lines,
by its suffix)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from modelyard.domain.capture import CALLER_ID, INPUT_PREFIX, METADATA_COLUMNS, OUTPUT_PREFIX
from modelyard.domain.durations import as_utc
from modelyard.errors import InvalidInput

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
    """A type every one of ``types`` casts to: numbers as float64, lists as a list of their
    items' common type, structs as a struct of every field any has; else text."""
    import pyarrow as pa

    distinct = {t for t in types if not pa.types.is_null(t)}
    if not distinct:
        return pa.null()
    if len(distinct) == 1:
        return distinct.pop()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in distinct):
        return pa.float64()
    if all(_is_list(t) for t in distinct):
        return pa.list_(_common_type([t.value_type for t in distinct]))
    if all(pa.types.is_struct(t) for t in distinct):
        fields: dict[str, list[pa.DataType]] = {}
        for kind in types:  # ``types``, not the set: fields in the order the files have them
            for field in getattr(kind, "fields", ()):
                fields.setdefault(field.name, []).append(field.type)
        return pa.struct([(name, _common_type(found)) for name, found in fields.items()])
    return pa.string()  # e.g. a field hashed since: its numbers read as text


def _is_list(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def _cast(column: Any, kind: pa.DataType) -> Any:
    """``column`` (an Arrow array, chunked or not: no chunk is copied to join them) as type
    ``kind``; a nested value as text is its JSON."""
    import pyarrow as pa

    if column.type == kind:
        return column
    if pa.types.is_string(kind) and pa.types.is_nested(column.type):
        return pa.array([None if v is None else _json(v) for v in column.to_pylist()], kind)
    # Unsafe only for numbers to float64: an int past 2**53 is rounded, as any float is.
    return column.cast(kind, safe=not pa.types.is_floating(kind))


def unify(tables: list[pa.Table], sources: list[str] | None = None) -> pa.Table:
    """One table with every column any of ``tables`` has, metadata first, then ``input.*``
    and ``output.*``, each in the order they first appear.

    A column whose type differs between tables gets one that holds them all: numbers are
    float64, lists a list of their items' common type, structs every field any has (those
    a table lacks null). Other mixes (a version answering numbers, the next lists of them;
    a field hashed since) are text, a nested value as its JSON: ``0.5`` and ``[0.1,0.9]``.

    Args:
        sources: What each table was read from (a file), for an error to name.

    Raises:
        InvalidInput: a column that not even text holds (bytes that are not UTF-8), naming
            the column, its types and the files.
    """
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
    columns: dict[str, list[Any]] = {}
    fields = []
    for name in names:
        kind = _common_type(found[name]) if found[name] else schema.field(name).type
        try:
            parts = _parts(tables, name, kind)
        except pa.ArrowException:  # a list of structs unlike each other, say: as text
            kind = pa.string()
            try:
                parts = _parts(tables, name, kind)
            except pa.ArrowException as exc:
                raise InvalidInput(_unreadable(name, tables, sources, exc)) from None
        columns[name] = parts
        fields.append(pa.field(name, kind))
    target = pa.schema(fields)
    return pa.concat_tables(
        [
            pa.Table.from_arrays([columns[f.name][i] for f in target], schema=target)
            for i in range(len(tables))
        ]
    )


def _parts(tables: list[pa.Table], name: str, kind: pa.DataType) -> list[Any]:
    """Column ``name`` of each of ``tables`` as ``kind`` (all null where a table lacks it)."""
    import pyarrow as pa

    return [
        _cast(table[name], kind)
        if name in table.column_names
        else pa.nulls(table.num_rows, type=kind)
        for table in tables
    ]


def _unreadable(
    name: str, tables: list[pa.Table], sources: list[str] | None, exc: Exception
) -> str:
    kinds: dict[str, list[str]] = {}
    for i, table in enumerate(tables):
        if name in table.column_names:
            where = sources[i] if sources is not None else f"table {i + 1}"
            kinds.setdefault(str(table.schema.field(name).type), []).append(where)
    held = "; ".join(f"{kind} in {', '.join(where)}" for kind, where in kinds.items())
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"captured column {name!r} cannot be read as one type ({held}): {reason}"


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


def caller_ids(meta: Any) -> int | None:
    """How many rows of a Parquet file have a caller's id (``caller_inference_id`` not null),
    from its footer: 0 when the file has no such column; None when its footer keeps no null
    count of it."""
    names = meta.schema.to_arrow_schema().names
    if CALLER_ID not in names:
        return 0
    index = names.index(CALLER_ID)
    count = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        stats = group.column(index).statistics
        if stats is None or not stats.has_null_count:
            return None
        count += group.num_rows - stats.null_count
    return count


#: The file formats an export writes, by the suffix of its name.
EXPORT_FORMATS = {".parquet": "Parquet", ".csv": "CSV", ".jsonl": "JSON Lines"}


def export_format(out: str) -> str:
    """The format an export to ``out`` is written in, from its suffix.

    Raises:
        InvalidInput: another suffix (or none), naming the ones taken; a name that is only
            a suffix.
    """
    name = out.rsplit("/", 1)[-1]
    stem, dot, last = name.rpartition(".")
    suffix = f".{last.lower()}" if dot else ""
    if suffix not in EXPORT_FORMATS:
        taken = ", ".join(f"{s} ({f})" for s, f in EXPORT_FORMATS.items())
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        raise InvalidInput(f"cannot tell what to write to {name!r} ({what}); name it {taken}")
    if not stem:  # '.parquet' would be a hidden file with no name
        raise InvalidInput(
            f"{out!r} is only a suffix; give the file a name (rows{suffix}, for instance)"
        )
    return EXPORT_FORMATS[suffix]


def table_writer(table: pa.Table, fmt: str) -> Callable[[BinaryIO], None]:
    """What writes ``table`` in format ``fmt`` (a value of :data:`EXPORT_FORMATS`) to a file.

    CSV and JSON Lines have no nested values: a list or struct column (class probabilities)
    is written as JSON text in CSV; in JSON Lines every row is one JSON object, times as ISO
    8601 text and NaN or infinite numbers as null.

    In CSV, a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    gets a leading ``'`` (:func:`_defused`): captured text comes from any caller of an
    endpoint, and a spreadsheet opening the file would run it as a formula (CSV injection).
    """
    if fmt == "Parquet":
        import pyarrow.parquet as pq

        return lambda handle: pq.write_table(table, handle)
    if fmt == "CSV":
        import pyarrow.csv as pcsv

        return lambda handle: pcsv.write_csv(_defused(_flat(table)), handle)
    return lambda handle: _write_json_lines(table, handle)


#: What starts a formula in a spreadsheet (OWASP's list for CSV injection).
_FORMULA_START = r"^[=+\-@\t\r]"
#: Text that is only a number (``-1.5``, ``+2e3``): a spreadsheet reads it as that number.
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _defused(table: pa.Table) -> pa.Table:
    """``table`` with every text cell a spreadsheet would run as a formula prefixed with a
    single quote (OWASP's advice against CSV injection): one that starts with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return, unless it is only a number. Number columns are
    never touched, so a negative number stays a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for index, field in enumerate(table.schema):
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            continue
        text = table[field.name].cast(kind)
        risky = pc.and_(
            pc.match_substring_regex(text, _FORMULA_START),
            pc.invert(pc.match_substring_regex(text, _NUMBER)),
        )
        quoted = pc.binary_join_element_wise(pa.scalar("'", kind), text, pa.scalar("", kind))
        table = table.set_column(index, field.name, pc.if_else(risky, quoted, text))
    return table


def _flat(table: pa.Table) -> pa.Table:
    """``table`` with its nested columns as JSON text."""
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            text = [None if v is None else _json(v) for v in table[field.name].to_pylist()]
            table = table.set_column(index, field.name, pa.array(text, type=pa.string()))
    return table


def _write_json_lines(table: pa.Table, handle: BinaryIO) -> None:
    for batch in table.to_batches(max_chunksize=10_000):
        lines = [_json(row) + "\n" for row in batch.to_pylist()]
        handle.write("".join(lines).encode())


def _json(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):  # a date, datetime or time
        return value.isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)  # a Decimal, a timedelta
