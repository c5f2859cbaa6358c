"""Reading small tabular inputs (input examples, test rows) into DataFrames."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.domain.signature import check_column_names
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")


def read_table(path: Path, text: Collection[str] = ()) -> pd.DataFrame:
    """Read a CSV (with a header, or rows alone: see :func:`_is_header`), JSON (records,
    ``{"instances": …}`` or ``{"columns", "data"}``), JSON Lines or Parquet file.

    ``text``: columns a model takes as text (zip codes, category codes): a CSV's are read as
    written (``02139`` stays ``02139``, not the number 2139), and numbers in another file's
    become their text; missing values stay missing.

    Raises:
        InvalidInput: for a missing, unreadable, empty or unsupported file, or one naming a
            column twice; the message names it (and the columns).
    """
    import pandas as pd

    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; give one data file ({', '.join(SUFFIXES)})")
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # pandas renames a repeated header ('a', 'a' become 'a', 'a.1'): read it as written.
            header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
            first = [str(name) for name in header.iloc[0]] if len(header) else []
            if _is_header(first):
                _refuse_duplicates(path, first)
                frame = _read_csv(path, {name: str for name in text})
            else:
                frame = pd.read_csv(path, header=None)
        # A BOM first is skipped, as pandas skips it in a CSV (Windows tools write one).
        elif suffix == ".jsonl":
            _refuse_duplicate_keys(path)
            as_written = {name: str for name in text}  # else "02139" is read as 2139
            frame = pd.read_json(path, lines=True, encoding="utf-8-sig", dtype=as_written or True)
        elif suffix == ".json":
            body = path.read_text(encoding="utf-8-sig")
            frame = to_frame(json.loads(body, object_pairs_hook=_keys_once(path)), str(path))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            _refuse_duplicates(path, pq.read_schema(path).names)
            frame = pd.read_parquet(path)
        else:
            raise InvalidInput(
                f"cannot read {path}: unsupported file type {suffix or '(none)'}; "
                f"use one of {', '.join(SUFFIXES)}"
            )
    except InvalidInput:
        raise
    # pandas raises TypeError for a JSON Lines file mixing objects and bare values
    except (ValueError, TypeError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None
    _refuse_duplicates(path, [str(name) for name in frame.columns])
    check_column_names(frame.columns, str(path))
    if frame.empty:
        raise InvalidInput(f"{path} holds no rows")
    for name in text:
        if name in frame.columns and not pd.api.types.is_string_dtype(frame[name]):
            frame[name] = frame[name].map(_as_text)
    return frame


def _as_text(value: object) -> object:
    """A value of a text column as text: a number as its digits (``2139.0``, which a JSON
    reader makes of 2139 beside a null, as ``2139``); a missing value stays missing."""
    if isinstance(value, str) or value is None or value != value:  # NaN is not equal to itself
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_header(fields: list[str]) -> bool:
    """Whether a CSV's first line names columns. A line of numbers is a row, as SageMaker
    sends them and numpy's ``savetxt`` writes them: read as a header, the row was lost and its
    numbers became feature names. pandas' own header for unnamed columns (``0,1,2``) is one."""
    if fields == [str(i) for i in range(len(fields))]:
        return True
    for field in fields:
        try:
            float(field.replace("_", "?"))  # '1_0' is a name, though Python reads it as 10
        except ValueError:
            return True
    return not fields


def _read_csv(path: Path, dtype: dict[str, type[str]]) -> pd.DataFrame:
    """A CSV with a header. A first row with one field more than the header made pandas take
    the first column as the index, silently shifting every value one column left; it is
    refused, as a later row with too many fields is."""
    import warnings

    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(path, index_col=False, dtype=dtype or None)
        except pd.errors.ParserWarning:
            raise InvalidInput(
                f"cannot read {path}: a row has more fields than the header names"
            ) from None


def _refuse_duplicates(path: Path, names: list[str]) -> None:
    """Refuse a table naming a column twice: which of the two is meant cannot be told."""
    from collections import Counter

    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise InvalidInput(f"{path} has duplicate columns: {', '.join(duplicates)}")


def _keys_once(path: Path) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A ``json`` object hook refusing an object that names a key twice: JSON keeps the last
    of the two, so a record naming a column twice would silently lose one of its values."""

    def pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        _refuse_duplicates(path, [key for key, _ in pairs])
        return dict(pairs)

    return pairs_to_dict


def _refuse_duplicate_keys(path: Path) -> None:
    """Refuse a JSON Lines file one of whose records names a key twice (pandas keeps the last)."""
    hook = _keys_once(path)
    with path.open(encoding="utf-8-sig") as lines:
        for line in lines:
            if line.strip():
                json.loads(line, object_pairs_hook=hook)


def to_frame(data: Any, what: str = "the input example") -> pd.DataFrame:
    """Turn an in-memory example (DataFrame, 2-D array, list of rows/records, JSON shapes) into
    a DataFrame.

    Args:
        what: How messages name the data (a file's path, when it was read from one).

    Raises:
        InvalidInput: when the data is not a non-empty table of rows.
    """
    try:
        frame = _frame(data, what)
    except InvalidInput:
        raise
    except (TypeError, ValueError) as exc:  # pandas' and numpy's refusals of ragged shapes
        raise InvalidInput(f"{what} is not a table of rows: {exc}") from None
    if frame.empty:
        raise InvalidInput(f"{what} holds no rows")
    return frame


def _frame(data: Any, what: str) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict) and "instances" in data:
        return _frame(data["instances"], what)
    if isinstance(data, dict) and {"columns", "data"} <= data.keys():
        return pd.DataFrame(data["data"], columns=data["columns"])
    if isinstance(data, dict):
        return pd.DataFrame(data)
    array = np.asarray(data)
    if array.ndim == 1 and array.dtype == object and len(array) and isinstance(array[0], dict):
        return pd.DataFrame(list(array))
    if array.ndim == 1:
        return pd.DataFrame(array.reshape(1, -1))
    if array.ndim == 2:
        return pd.DataFrame(array)
    raise InvalidInput(f"{what} must be 2-D (rows x features), got shape {array.shape}")
