"""Reading a training channel (a file, a folder or a glob, local or any fsspec URL) into a
:class:`Dataset` of features and target.

Formats are chosen by extension: ``.csv`` / ``.csv.gz``, ``.parquet``, ``.jsonl`` / ``.json``
(JSON Lines; a ``.json`` file holding one array of records is read too). CSV files follow
SageMaker's built-in XGBoost convention: when the first line is all numbers the file has no
header and the target is its FIRST column (features are named ``f0``, ``f1`` …); otherwise the
first line is a header and the target is the column named by ``target`` (default: ``label`` or
``target``).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput, MissingDependency
from modelyard.storage.filesystems import is_pattern

if TYPE_CHECKING:
    import pandas as pd

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
JSON_SUFFIXES = (".jsonl", ".json")
SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + JSON_SUFFIXES
DEFAULT_TARGETS = ("label", "target")
HEADERLESS_TARGET = "label"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A table split into features and target.

    Attributes:
        features: One row per sample, the feature columns in file order.
        target: The target column (same index as ``features``), or None when there is none.
        files: The files read, in the order read (URLs keep their protocol).
    """

    features: pd.DataFrame
    target: pd.Series | None
    files: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.features)


@dataclass(frozen=True)
class _Table:
    frame: pd.DataFrame
    headerless: bool


def read_dataset(uri: str, *, target: str | None = None, require_target: bool = True) -> Dataset:
    """Read every data file ``uri`` names into one :class:`Dataset`.

    Args:
        uri: A file, a folder (its data files, sorted by name; names starting with ``.`` or
            ``_`` are skipped) or a glob; a local path or any fsspec URL.
        target: The target column of files with a header. Must be None for headerless CSV,
            whose target is always the first column.
        require_target: When False (unsupervised algorithms), a table without a ``label`` or
            ``target`` column and no ``target`` given yields ``Dataset.target`` None.

    Returns:
        The features and target of all files, concatenated in file order.

    Raises:
        InvalidInput: no such file, an empty folder, a glob matching nothing, an unsupported
            extension, an unreadable or malformed file, files with different columns, a
            missing target column, or no rows at all. The message names the path or column.
        MissingDependency: a Parquet file, and neither pyarrow nor fastparquet is installed.
    """
    files = _resolve(uri)
    tables = [_read_file(url) for url in files]
    first = tables[0]
    for url, table in zip(files[1:], tables[1:], strict=True):
        if table.headerless != first.headerless:
            has, lacks = (url, files[0]) if first.headerless else (files[0], url)
            raise InvalidInput(f"{has} has a header row but {lacks} does not")
        if list(table.frame.columns) != list(first.frame.columns):
            raise InvalidInput(
                f"{url} has columns {_names(table.frame.columns)} but {files[0]} has "
                f"{_names(first.frame.columns)}: all files of a channel need the same columns"
            )
    import pandas as pd

    frame = (
        pd.concat([t.frame for t in tables], ignore_index=True) if len(tables) > 1 else first.frame
    )
    if frame.empty:
        raise InvalidInput(f"{uri} holds no rows")
    column = _target_column(uri, frame, target, first.headerless, require_target)
    if column is None:
        return Dataset(features=frame, target=None, files=tuple(files))
    features = frame.drop(columns=[column])
    if features.shape[1] == 0:
        raise InvalidInput(f"{uri} has no feature columns besides the target {column!r}")
    return Dataset(features=features, target=frame[column], files=tuple(files))


def _names(columns: Any) -> str:
    return ", ".join(str(c) for c in columns)


def _target_column(
    uri: str, frame: pd.DataFrame, target: str | None, headerless: bool, require: bool
) -> str | None:
    columns = [str(c) for c in frame.columns]
    if headerless:
        if target is not None:
            raise InvalidInput(
                f"{uri} has no header row (its first line is all numbers), so its target is "
                f"the first column: name no target column (got {target!r})"
            )
        return HEADERLESS_TARGET
    if target is not None:
        if target not in columns:
            raise InvalidInput(
                f"target column {target!r} is not in {uri}; its columns are: {_names(columns)}"
            )
        return target
    found = next((name for name in DEFAULT_TARGETS if name in columns), None)
    if found is None and require:
        raise InvalidInput(
            f"{uri} has no column named 'label' or 'target': name the target column "
            f"(its columns are: {_names(columns)})"
        )
    return found


def _resolve(uri: str) -> list[str]:
    """The files ``uri`` names, as URLs (plain paths for local input given as a path)."""
    import fsspec
    from fsspec.utils import get_protocol

    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ValueError, ImportError, OSError) as exc:
        raise InvalidInput(f"cannot open {uri}: {exc}") from None
    keep_protocol = "://" in uri

    def url(p: str) -> str:
        return str(fs.unstrip_protocol(p)) if keep_protocol else p

    try:
        if is_pattern(fs, path):
            found = sorted(p for p in fs.glob(path) if fs.isfile(p))
            if not found:
                raise InvalidInput(f"no files match {uri}")
            return [url(p) for p in found]
        if fs.isdir(path):
            names = sorted(
                p
                for p in fs.ls(path, detail=False)
                if fs.isfile(p)
                and not p.rstrip("/").rsplit("/", 1)[-1].startswith((".", "_"))
                and p.lower().endswith(SUFFIXES)
            )
            if not names:
                raise InvalidInput(f"no data files ({', '.join(SUFFIXES)}) in the folder {uri}")
            return [url(p) for p in names]
        if fs.isfile(path):
            return [url(path)]
    except OSError as exc:
        raise InvalidInput(f"cannot list {uri}: {exc}") from None
    where = get_protocol(uri)
    raise InvalidInput(
        f"no such file or folder: {uri}" + (f" ({where} storage)" if where != "file" else "")
    )


def _read_file(url: str) -> _Table:
    import fsspec

    lower = url.lower()
    if not lower.endswith(SUFFIXES):
        name = url.rsplit("/", 1)[-1]
        suffix = name[name.index(".") :] if "." in name else "(none)"
        raise InvalidInput(
            f"cannot read {url}: unsupported file type {suffix}; use one of {', '.join(SUFFIXES)}"
        )
    compression = "gzip" if lower.endswith(".gz") else None
    try:
        with fsspec.open(url, "rb", compression=compression) as fh:
            if lower.endswith(CSV_SUFFIXES):
                return _read_csv(url, fh)
            if lower.endswith(PARQUET_SUFFIXES):
                return _Table(_read_parquet(url, fh), headerless=False)
            return _Table(_read_json(url, fh.read()), headerless=False)
    except InvalidInput:
        raise
    except (ValueError, OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        # pandas' ParserError and EmptyDataError, pyarrow's ArrowInvalid are ValueErrors.
        raise InvalidInput(f"cannot read {url}: {exc}") from None


def _read_csv(url: str, fh: Any) -> _Table:
    import pandas as pd

    data = fh.read()
    text = data.decode("utf-8-sig")
    if not text.strip():
        raise InvalidInput(f"{url} is empty")
    first_line = next(csv.reader([text.lstrip("\r\n").split("\n", 1)[0]]))
    headerless = _all_numeric(first_line)
    if not headerless:
        # pandas renames a repeated header to f, f.1, f.2, so a second ``label`` column would
        # quietly become a feature.
        _refuse_duplicates(url, [name.strip() for name in first_line])
    frame = pd.read_csv(io.StringIO(text), header=None if headerless else 0)
    if headerless:
        frame.columns = [HEADERLESS_TARGET] + [f"f{i}" for i in range(frame.shape[1] - 1)]
    return _Table(frame, headerless=headerless)


def _refuse_duplicates(url: str, names: list[str]) -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise InvalidInput(
            f"{url} has duplicate column names: {_names(repeated)}; "
            "every column needs a name of its own"
        )


def _all_numeric(fields: list[str]) -> bool:
    present = [f.strip() for f in fields if f.strip()]
    if not present:
        return False
    try:
        for value in present:
            float(value)
    except ValueError:
        return False
    return True


def _read_parquet(url: str, fh: Any) -> pd.DataFrame:
    from importlib.util import find_spec

    import pandas as pd

    if find_spec("pyarrow") is None and find_spec("fastparquet") is None:
        raise MissingDependency(f"reading {url} needs a Parquet engine: pip install pyarrow")
    data = io.BytesIO(fh.read())
    if find_spec("pyarrow") is not None:
        import pyarrow.parquet as pq

        _refuse_duplicates(url, list(pq.ParquetFile(data).schema_arrow.names))
        data.seek(0)
    return pd.read_parquet(data)


def _read_json(url: str, data: bytes) -> pd.DataFrame:
    import pandas as pd

    text = data.decode("utf-8-sig")
    if not text.strip():
        raise InvalidInput(f"{url} is empty")
    if url.lower().endswith(".json") and text.lstrip().startswith("["):
        return pd.read_json(io.StringIO(text), orient="records", dtype=False)
    return pd.read_json(io.StringIO(text), lines=True, dtype=False)
