"""Request bodies for a model that takes text: JSON or CSV read into a table (the text half of
:mod:`.payloads`).

A model whose signature has a text feature (dtype ``str``, ``object``, ``string``: a
scikit-learn Pipeline that encodes categories, say) is sent its rows as a pandas DataFrame with
the signature's column names, in its order: text columns hold Python strings, the others
float64, read as the numeric path reads them. The V2 routes build the same frame from BYTES
tensors, so batching, capture and the metrics see one form whichever protocol a request came
by. The JSON shapes are those of the numeric path (rows, records, one row, ``instances``,
``inputs``); a CSV body has no header row and its fields are in the signature's order.

Text values: a JSON string, or a JSON integer taken as its decimal text (a code such as 12345
sent as a number; up to 64 bits: the JSON reader turns a longer one into a float, refused);
null, or an empty CSV field, is a missing value (NaN, as pandas reads one). Anything else in
a text column (a float, a boolean, a list) is refused, naming its row and feature. Written by
hand over the numeric path's helpers because the numeric path's speed comes from reading
every value as a float, which these bodies cannot be.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.codecs.csv_requests import csv_number, rows_reader
from modelyard.codecs.json_shapes import (
    NO_ROWS,
    SHAPES,
    clip_names,
    feature_names,
    key_error,
    kind,
    named_columns,
    number_at,
    refuse_unnamed,
    where,
)
from modelyard.domain.signature import Signature
from modelyard.errors import InvalidPayload, SignatureMismatch

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["is_text_dtype", "table_from_csv", "table_from_json", "text_features"]

_TEXT_NAMES = frozenset({"object", "str", "string", "bytes", "unicode"})
#: A missing text value: NaN, as pandas reads one from a file (and keeps one in a column of its
#: str dtype). Always this one, so a row reads the same whatever else its request holds: None
#: where the other rows hold text became NaN, alone it stayed None, and scikit-learn takes the
#: two for different categories.
_MISSING = float("nan")
_BOM = "\ufeff"

# Per-signature text columns; Signature is unhashable (it holds a dict), so entries are keyed by
# id() and keep the signature alive, which stops the id from being reused while cached.
_TEXT: dict[int, tuple[Signature, tuple[bool, ...] | None]] = {}


@lru_cache(maxsize=64)
def is_text_dtype(name: str) -> bool:
    """Whether a signature's column dtype holds text: ``str``, ``object``, pandas ``string``
    (``string[python]``…), numpy ``U``/``S``/``O`` kinds."""
    lowered = name.lower()
    if lowered in _TEXT_NAMES or lowered.startswith("string"):
        return True
    try:  # as written first: numpy's codes are case-sensitive ("<U12" text, "<u4" a number)
        return np.dtype(name).kind in "OUS"
    except TypeError:  # pandas-only names (category, Int64 …), or in other case (FLOAT64)
        pass
    try:
        return np.dtype(lowered).kind in "OUS"
    except TypeError:
        return False


def text_features(signature: Signature | None) -> tuple[bool, ...] | None:
    """For each input of ``signature``, whether it takes text; None when none does (or there
    is no signature): the rows are then numbers."""
    if signature is None:
        return None
    hit = _TEXT.get(id(signature))
    if hit is not None and hit[0] is signature:
        return hit[1]
    flags = tuple(is_text_dtype(c.dtype) for c in signature.inputs)
    found = flags if any(flags) else None
    if len(_TEXT) >= 256:
        _TEXT.clear()
    _TEXT[id(signature)] = (signature, found)
    return found


def text_inputs(signature: Signature | None) -> list[str]:
    """The names of ``signature``'s inputs that take text (none without a signature; an
    unnamed input is left out: a file's columns are found by name)."""
    if signature is None:
        return []
    return [c.name for c in signature.inputs if c.name and is_text_dtype(c.dtype)]


def table_from_json(obj: Any, signature: Signature) -> pd.DataFrame:
    """A parsed JSON request as a table of ``signature``'s inputs (see the module docstring).

    Raises:
        InvalidPayload: an unknown shape, no rows, ragged rows, or a value its column cannot
            take (named by row and feature).
        SignatureMismatch: records or columns lacking a feature or holding another, or rows
            of another width.
    """
    if type(obj) is list:
        rows = _list_rows(obj, signature)
    elif type(obj) is dict:
        if "instances" in obj and "inputs" in obj:
            raise InvalidPayload('give either "instances" or "inputs", not both')
        items = obj.get("instances", obj.get("inputs"))
        if "instances" not in obj and "inputs" not in obj:
            raise InvalidPayload(
                f"unrecognised JSON object, keys {clip_names(list(obj))}; {SHAPES}"
            )
        if type(items) is list:
            rows = _list_rows(items, signature)
        elif type(items) is dict and "inputs" in obj:
            rows = _column_rows(items, signature)
        else:
            key = "instances" if "instances" in obj else "inputs"
            raise InvalidPayload(f'"{key}" cannot be {kind(items)}; {SHAPES}')
    else:
        raise InvalidPayload(f"unrecognised JSON: {kind(obj)}; {SHAPES}")
    names = _names(signature)
    _check_width(len(rows[0]), signature, names)
    text = text_features(signature) or ()
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        values = [row[j] for row in rows]
        if text[j]:
            columns[name] = np.array(
                [_json_text(v, i, j, names) for i, v in enumerate(values)], dtype=object
            )
        else:
            columns[name] = np.array(
                [number_at(v, i, j, names) for i, v in enumerate(values)], dtype=np.float64
            )
    return _frame(columns)


def table_from_csv(body: bytes, signature: Signature) -> pd.DataFrame:
    """A ``text/csv`` request body (no header row) as a table of ``signature``'s inputs.

    Raises:
        InvalidPayload: no rows, rows of other widths, malformed CSV, or a field of a numeric
            feature that is not a number (named by line and column).
        SignatureMismatch: rows of another width than the signature's.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"the CSV body is not UTF-8 text: {exc}") from None
    text = text.removeprefix(_BOM)
    reader = rows_reader(text)
    rows: list[list[str]] = []
    lines: list[int] = []
    width = first = -1
    try:
        for fields in reader:
            # A blank line reads as [] and a line of spaces as [" "]; a quoted "" is [""].
            if not fields or (len(fields) == 1 and fields[0] and fields[0].isspace()):
                continue
            if width < 0:
                width, first = len(fields), reader.line_num
            elif len(fields) != width:
                raise InvalidPayload(
                    f"line {reader.line_num} has {len(fields)} fields, line {first} has {width}"
                )
            rows.append(fields)
            lines.append(reader.line_num)
    except csv.Error as exc:
        hint = " (a quoted field is never closed)" if "end of data" in str(exc) else ""
        raise InvalidPayload(f"line {reader.line_num}: malformed CSV: {exc}{hint}") from None
    if not rows:
        raise InvalidPayload(NO_ROWS)
    names = _names(signature)
    _check_width(width, signature, names)
    text_columns = text_features(signature) or ()
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        if text_columns[j]:
            columns[name] = np.array([row[j] or _MISSING for row in rows], dtype=object)
        else:
            columns[name] = np.array(
                [
                    csv_number(row[j], line, j, line == first)
                    for row, line in zip(rows, lines, strict=True)
                ],
                dtype=np.float64,
            )
    return _frame(columns)


def _list_rows(items: list[Any], signature: Signature) -> list[list[Any]]:
    if not items:
        raise InvalidPayload(NO_ROWS)
    first = items[0]
    if type(first) is list:
        for i, row in enumerate(items):
            if type(row) is not list:
                raise InvalidPayload(f"row {i + 1}: expected a list like row 1, got {kind(row)}")
            if len(row) != len(first):
                raise InvalidPayload(f"row {i + 1} has {len(row)} values, row 1 has {len(first)}")
        return items
    if type(first) is dict:
        named = feature_names(signature)
        if named is None:
            refuse_unnamed(signature)
        keys = named if named is not None else tuple(first)
        rows = []
        for i, record in enumerate(items):
            if type(record) is not dict:
                raise InvalidPayload(
                    f"row {i + 1}: expected an object like row 1, got {kind(record)}"
                )
            if len(record) != len(keys) or any(k not in record for k in keys):
                raise key_error(i, record, keys, named=named is not None)
            rows.append([record[k] for k in keys])
        return rows
    # A flat list is one row, except for a one-feature model, where each value is a row.
    return [[v] for v in items] if len(signature.inputs) == 1 else [items]


def _column_rows(columns: dict[str, Any], signature: Signature) -> list[list[Any]]:
    _, values = named_columns(columns, signature)
    return [list(row) for row in zip(*values, strict=True)]


def _json_text(value: Any, row: int, col: int, names: tuple[str, ...]) -> str | float:
    if type(value) is str:
        return value
    if value is None:
        return _MISSING
    if type(value) is int:  # a code sent as a number: its decimal text
        return str(value)
    raise InvalidPayload(f"{where(row, col, names)}: expected text or null, got {kind(value)}")


def _names(signature: Signature) -> tuple[str, ...]:
    return feature_names(signature) or tuple(str(j) for j in range(len(signature.inputs)))


def _check_width(width: int, signature: Signature, names: tuple[str, ...]) -> None:
    if width != len(signature.inputs):
        raise SignatureMismatch(
            f"expected {len(signature.inputs)} features {clip_names(names)}, got {width}"
        )


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    import pandas as pd  # only models with text features need pandas on the request path

    return pd.DataFrame(columns)
