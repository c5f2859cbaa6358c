"""JSON request shapes turned into a 2-D float64 array (the JSON half of :mod:`.payloads`).

Every shape takes a fast path first (``numpy.array(obj, dtype=float64)`` on what orjson
returned) and only when numpy refuses does a slow, pure-Python pass run, whose one job is to
find the offending row and feature and say so. Both passes accept the same values: numbers,
booleans (1.0/0.0), null (NaN) and strings that read as numbers by :func:`.parse_number`.

A numeral too large for a float64 is refused, as in CSV: orjson refuses ``1e400`` outright, and
the json module fallback turns it into :class:`TooLarge`, which the slow pass names. numpy reads
a string ``"1e400"`` as infinity, so a caller that saw strings and infinity in the result runs
the slow pass again with ``exact=True``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from modelyard.domain.numbers import parse_number
from modelyard.domain.signature import Signature
from modelyard.errors import InvalidPayload, SignatureMismatch

Matrix = npt.NDArray[np.float64]

NO_ROWS = "no rows in the request"
SHAPES = (
    "accepted JSON shapes: [x, ...] (one row), [[x, ...], ...] (rows), "
    '[{"name": x, ...}, ...] (records), {"instances": rows or records}, '
    '{"inputs": {"name": [x, ...], ...}} (columns) or {"inputs": rows}'
)
_CONVERT_ERRORS = (ValueError, TypeError, OverflowError)
_NUMBER_TYPES = (float, int, bool)

# Per-signature feature names; Signature is unhashable (it holds a dict), so entries are keyed by
# id() and keep the signature alive, which stops the id from being reused while cached.
_NAMES: dict[int, tuple[Signature, tuple[str, ...] | None]] = {}


class TooLarge:
    """A JSON numeral that overflows a float64, kept as its text so the slow pass can name it.

    numpy cannot convert it (it has no ``__float__``), so the fast path fails over to the slow
    pass, which reports its row and column.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def json_number(text: str) -> float | TooLarge:
    """``parse_float``/``parse_int`` hook for :func:`json.loads`: a float, or :class:`TooLarge`."""
    value = float(text)
    return TooLarge(text) if math.isinf(value) else value


def feature_names(signature: Signature | None) -> tuple[str, ...] | None:
    """The signature's feature names, or None when there is no signature or a column is unnamed."""
    if signature is None:
        return None
    hit = _NAMES.get(id(signature))
    if hit is not None and hit[0] is signature:
        return hit[1]
    listed = signature.feature_names
    names = tuple(listed) if listed else None
    if len(_NAMES) >= 256:
        _NAMES.clear()
    _NAMES[id(signature)] = (signature, names)
    return names


def n_features(signature: Signature | None) -> int | None:
    """How many columns the signature requires; None when there is none (or it lists no inputs)."""
    return len(signature.inputs) if signature is not None and signature.inputs else None


def refuse_unnamed(signature: Signature | None) -> None:
    """Refuse named inputs (records, columns) for a model whose features have no names (one
    registered from a bare array): nothing says which name is which feature, and taking them
    in the order sent would predict on swapped features when a caller's keys come in another
    order. One feature under any name is unambiguous (more names are then a width mismatch);
    so is no signature at all (nothing to match: the names' order is all there is).

    Raises:
        SignatureMismatch: the signature lists more than one feature, not all of them named.
    """
    width = n_features(signature)
    if width is None or width == 1 or feature_names(signature) is not None:
        return
    raise SignatureMismatch(
        f"the model's {width} features have no names, so named inputs cannot be matched to "
        "them: send rows as arrays ([[x, ...], ...]) or as CSV, values in the model's order"
    )


def not_utf8(data: bytes | memoryview, error: Exception) -> str | None:
    """Where ``data``, which orjson refused with ``error``, stops being UTF-8 (``'utf-8' codec
    can't decode byte 0xe9 in position 20: …``), or None when that is not why. orjson says
    only "str is not valid UTF-8: surrogates not allowed" at "line 1 column 1 (char 0)",
    whatever the byte and wherever it is."""
    if "UTF-8" not in str(error):
        return None
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        return str(exc)
    return None


def clip(value: object, limit: int = 40) -> str:
    """``repr`` of a value shortened for an error message."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text) if isinstance(value, str) else text


def clip_names(names: list[str] | tuple[str, ...], limit: int = 10) -> str:
    """``['a', 'b', … and 7 more]``: a list of names for a message, cut after ``limit``."""
    shown = ", ".join(clip(n) for n in names[:limit])
    more = f", … and {len(names) - limit} more" if len(names) > limit else ""
    return f"[{shown}{more}]"


def rows_from_json(obj: Any, signature: Signature | None, *, exact: bool = False) -> Matrix:
    """Turn a parsed JSON request into rows x features, named inputs in the signature's order.

    Args:
        obj: What orjson (or the json module) returned.
        signature: The model's signature, or None.
        exact: Skip numpy's conversion and read value by value: slower, but a string that
            overflows (``"1e400"``) is refused instead of read as infinity.

    Raises:
        InvalidPayload: an unknown shape, zero rows, ragged rows or a value that is not a number.
        SignatureMismatch: a named input lacks a feature of the signature or has one it lacks,
            or the signature's features have no names (:func:`refuse_unnamed`).
    """
    if type(obj) is list:
        return _from_list(obj, signature, exact)
    if type(obj) is dict:
        if "instances" in obj:
            if "inputs" in obj:
                raise InvalidPayload('give either "instances" or "inputs", not both')
            items = obj["instances"]
            if type(items) is list:
                return _from_list(items, signature, exact)
            raise InvalidPayload(f'"instances" must be a list, got {kind(items)}; {SHAPES}')
        if "inputs" in obj:
            items = obj["inputs"]
            if type(items) is dict:
                return _from_columns(items, signature, exact)
            if type(items) is list:
                return _from_list(items, signature, exact)
            shown = kind(items)
            raise InvalidPayload(f'"inputs" must be an object or a list, got {shown}; {SHAPES}')
        raise InvalidPayload(f"unrecognised JSON object, keys {clip_names(list(obj))}; {SHAPES}")
    raise InvalidPayload(f"unrecognised JSON: {kind(obj)}; {SHAPES}")


def _from_list(items: list[Any], signature: Signature | None, exact: bool) -> Matrix:
    if not items:
        raise InvalidPayload(NO_ROWS)
    first = items[0]
    if type(first) is list:
        fast = None if exact else _fast_rows(items)
        return fast if fast is not None else _convert_rows(items, feature_names(signature))
    if type(first) is dict:
        return _from_records(items, signature, exact)
    return _from_flat(items, signature, exact)


def _from_flat(items: list[Any], signature: Signature | None, exact: bool) -> Matrix:
    """A flat list is one row, except for a one-feature model, where each value is a row."""
    array = None
    if not exact:
        try:
            array = np.array(items, dtype=np.float64)
        except _CONVERT_ERRORS:
            array = None
    if array is None or array.ndim != 1:
        names = feature_names(signature)
        array = np.array([number_at(v, 0, j, names) for j, v in enumerate(items)], dtype=np.float64)
    if n_features(signature) == 1:
        return array.reshape(-1, 1)
    return array.reshape(1, -1)


def _from_records(items: list[Any], signature: Signature | None, exact: bool) -> Matrix:
    names = feature_names(signature)
    if names is None:
        refuse_unnamed(signature)
    keys = names if names is not None else tuple(items[0])
    width = len(keys)
    rows = []
    for i, record in enumerate(items):
        if type(record) is not dict:
            raise InvalidPayload(f"row {i + 1}: expected an object like row 1, got {kind(record)}")
        try:
            row = [record[k] for k in keys]
        except KeyError:
            raise key_error(i, record, keys, named=names is not None) from None
        if len(record) != width:
            raise key_error(i, record, keys, named=names is not None)
        rows.append(row)
    fast = None if exact else _fast_rows(rows)
    return fast if fast is not None else _convert_rows(rows, keys)


def _fast_rows(rows: list[Any]) -> Matrix | None:
    """numpy's own conversion of rows of plain numbers; None when it cannot (the slow path then
    names the offending value)."""
    try:
        array = np.array(rows, dtype=np.float64)
    except _CONVERT_ERRORS:
        return None
    return array if array.ndim == 2 else None


def named_columns(
    columns: dict[str, Any], signature: Signature | None
) -> tuple[tuple[str, ...], list[list[Any]]]:
    """The columns of an ``{"inputs": {"name": [x, ...], ...}}`` body in the signature's order
    (a scalar is one row), all of one length, and their names.

    Raises:
        InvalidPayload: no columns or no rows, a column that is an object, or columns of
            other lengths.
        SignatureMismatch: a feature of the signature missing, or a column it does not take;
            a model whose features have no names (:func:`refuse_unnamed`).
    """
    if not columns:
        raise InvalidPayload(NO_ROWS)
    names = feature_names(signature)
    if names is None:
        refuse_unnamed(signature)
    keys = names if names is not None else tuple(columns)
    try:
        values: list[Any] = [columns[key] for key in keys]
    except KeyError:
        values = []
    if len(values) != len(columns) and names is not None:
        known = set(names)
        missing = [n for n in names if n not in columns]
        unexpected = [k for k in columns if k not in known]
        raise SignatureMismatch(key_message(missing, unexpected, names))
    length = -1
    for i, column in enumerate(values):
        if type(column) is not list:
            if type(column) is dict:
                raise InvalidPayload(f"feature {clip(keys[i])}: expected a list, got an object")
            column = values[i] = [column]  # a scalar per feature: one row
        if length < 0:
            length = len(column)
        elif len(column) != length:
            raise InvalidPayload(
                f"feature {clip(keys[i])} has {len(column)} values, feature {clip(keys[0])} has "
                f"{length}: every column must have the same length"
            )
    if length == 0:
        raise InvalidPayload(NO_ROWS)
    return keys, values


def _from_columns(columns: dict[str, Any], signature: Signature | None, exact: bool) -> Matrix:
    keys, values = named_columns(columns, signature)
    length = len(values[0])
    array = None
    if not exact:
        try:
            # Few rows (one instance is the common case): zip is cheaper than a transpose.
            if length <= 8:
                array = np.array(list(zip(*values, strict=True)), dtype=np.float64)
            else:
                array = np.ascontiguousarray(np.array(values, dtype=np.float64).T)
        except _CONVERT_ERRORS:
            array = None
    if array is None or array.ndim != 2:
        rows = range(length)
        converted = [[number_at(col[r], r, c, keys) for c, col in enumerate(values)] for r in rows]
        return np.array(converted, dtype=np.float64)
    return array


def _convert_rows(rows: list[Any], names: tuple[str, ...] | None) -> Matrix:
    """The slow pass over rows: converts value by value, naming the first one that fails."""
    width = len(rows[0])
    out = []
    for i, row in enumerate(rows):
        if type(row) is not list:
            raise InvalidPayload(f"row {i + 1}: expected a list like row 1, got {kind(row)}")
        if len(row) != width:
            raise InvalidPayload(f"row {i + 1} has {len(row)} values, row 1 has {width}")
        out.append([number_at(v, i, j, names) for j, v in enumerate(row)])
    return np.array(out, dtype=np.float64)


def number_at(value: Any, row: int, col: int, names: tuple[str, ...] | None) -> float:
    if value is None:
        return math.nan
    if type(value) is str:
        try:
            return parse_number(value)
        except ValueError:
            problem = f"cannot read {clip(value)} as a number"
        except OverflowError:
            problem = f"{clip(value)} is too large for a float"
    elif type(value) in _NUMBER_TYPES:
        try:
            return float(value)
        except OverflowError:  # an int past float64's range
            problem = f"{clip(value)} is too large for a float"
    elif type(value) is TooLarge:
        problem = f"{clip(value.text)} is too large for a float"
    else:
        problem = f"expected a number or null, got {kind(value)}"
    raise InvalidPayload(f"{where(row, col, names)}: {problem}")


def where(row: int, col: int, names: tuple[str, ...] | None) -> str:
    place = f"row {row + 1}, column {col + 1}"
    if names is not None and col < len(names):
        place += f" (feature {clip(names[col])})"
    return place


def key_error(i: int, record: dict[str, Any], keys: tuple[str, ...], *, named: bool) -> Exception:
    missing = [k for k in keys if k not in record]
    known = set(keys)
    unexpected = [k for k in record if k not in known]
    message = f"row {i + 1}: {key_message(missing, unexpected, keys if named else None)}"
    if named:
        return SignatureMismatch(message)
    return InvalidPayload(f"{message} (every record must have the keys of row 1)")


def key_message(missing: list[str], unexpected: list[str], names: tuple[str, ...] | None) -> str:
    parts = []
    if missing:
        parts.append(f"missing features: {clip_names(missing)}")
    if unexpected:
        parts.append(f"unexpected features: {clip_names(unexpected)}")
        if names is not None:
            parts.append(f"the model takes {clip_names(names)}")
    return "; ".join(parts)


def kind(value: Any) -> str:
    if type(value) is list:
        return "a list"
    if type(value) is dict:
        return "an object"
    if value is None:
        return "null"
    if type(value) is str:
        return f"a string {clip(value)}"
    return f"{type(value).__name__} {clip(value)}"
