"""Profiles: the sketches of every column of a table (and of a model's predictions on it).

A :class:`Profile` is what a baseline is, and what a captured window becomes before it is
compared with one. Like its sketches it is deterministic (the same rows give the same bytes,
in any order), exactly mergeable (the profiles of two halves merge into the profile of the
whole) and bounded in size whatever the row count (see ``sketch`` and ``frequencies``).

Column kinds come from the column's type: numbers, booleans (as 0 and 1) and times are
``numeric``; strings, categories and anything else are ``categorical``. Booleans are numbers
because that is how they reach a server: a training table's ``True`` arrives in a request as
``1.0``, and the two must profile alike to be compared. Columns of strings also
keep a sketch of their lengths; one with more distinct values than the frequency sketch keeps
is compared as ``text``, by those lengths.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.monitoring.frequencies import Frequencies
from modelyard.monitoring.sketch import NumericSketch

if TYPE_CHECKING:
    import pandas as pd

#: The name of a single prediction column (as captured rows name it: ``output.prediction``).
PREDICTION = "prediction"
#: Below this many values in a table, sketching columns in parallel costs more than it saves.
_PARALLEL_VALUES = 200_000


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    """The sketches of one column.

    Attributes:
        name: The column name.
        kind: ``numeric`` (``numbers`` is set) or ``categorical`` (``categories`` is set).
        numbers: The quantile sketch of a numeric column.
        categories: The frequencies of a categorical column.
        lengths: The quantile sketch of string lengths, for columns of strings.
    """

    name: str
    kind: str
    numbers: NumericSketch | None = None
    categories: Frequencies | None = None
    lengths: NumericSketch | None = None

    @property
    def rows(self) -> int:
        """Values, missing ones included."""
        return self.present + self.missing

    @property
    def present(self) -> int:
        """Values that are not missing (finite, for numbers)."""
        if self.numbers is not None:
            return self.numbers.count
        return self.categories.total if self.categories is not None else 0

    @property
    def missing(self) -> int:
        """Missing values: None, NaN, NA, and infinite numbers."""
        if self.numbers is not None:
            return self.numbers.missing
        return self.categories.missing if self.categories is not None else 0

    @property
    def drift_kind(self) -> str:
        """How drift tests read it: ``numeric``, ``categorical``, or ``text`` (a string column
        with more distinct values than its frequencies keep: compared by length)."""
        overflow = self.categories is not None and self.categories.overflow
        if self.kind == "categorical" and self.lengths is not None and overflow:
            return "text"
        return self.kind

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """The column profile of both sides' rows.

        Raises:
            InvalidInput: the two sides hold different kinds of values.
        """
        mine, theirs = self, other
        # A column with no value says nothing about its type: it takes the other side's.
        if mine.kind != theirs.kind and not mine.present:
            mine = _empty_like(theirs, mine.missing)
        elif mine.kind != theirs.kind and not theirs.present:
            theirs = _empty_like(mine, theirs.missing)
        if mine.kind != theirs.kind:
            raise InvalidInput(
                f"column {self.name!r} holds {mine.kind} values on one side and "
                f"{theirs.kind} values on the other"
            )
        return ColumnProfile(
            self.name,
            mine.kind,
            _merged(mine.numbers, theirs.numbers),
            _merged(mine.categories, theirs.categories),
            _merged_lengths(mine, theirs),
        )


@dataclass(frozen=True, eq=False)
class Profile:
    """Per-column sketches of a table, its row count, and optionally the profile of a model's
    predictions on those rows (columns ``prediction``, or ``0``, ``1``... for several)."""

    row_count: int
    column_profiles: tuple[ColumnProfile, ...]
    predictions: Profile | None = None

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, predictions: Any = None, workers: int | None = None
    ) -> Profile:
        """Profile every column of ``frame``, and ``predictions`` (an array or a DataFrame
        with one row per row of ``frame``) when given.

        Args:
            workers: Threads that sketch columns at once (default: up to 2, fewer on a
                smaller machine); numpy releases the GIL while it sorts.

        Raises:
            InvalidInput: duplicate column names, or predictions of another length.
        """
        names = [str(c) for c in frame.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInput(f"the data has duplicate columns: {', '.join(duplicates)}")
        columns = [frame.iloc[:, i] for i in range(frame.shape[1])]
        threads = workers or min(2, os.cpu_count() or 1)
        if threads > 1 and frame.size >= _PARALLEL_VALUES and len(columns) > 1:
            with ThreadPoolExecutor(threads, thread_name_prefix="sketch") as pool:
                profiles = tuple(pool.map(column_profile, names, columns))
        else:
            profiles = tuple(map(column_profile, names, columns))
        predicted = None
        if predictions is not None:
            table = prediction_frame(predictions)
            if len(table) != len(frame):
                raise InvalidInput(
                    f"{len(table)} predictions for {len(frame)} rows: give one per row"
                )
            predicted = cls.from_frame(table, workers=workers)
        return cls(len(frame), profiles, predicted)

    def merge(self, other: Profile) -> Profile:
        """The profile of both profiles' rows together (exactly the profile of all of them).

        Raises:
            InvalidInput: the two profiles do not have the same columns (named), or a column
                holds different kinds of values.
        """
        if set(self.columns) != set(other.columns):
            raise InvalidInput(f"cannot merge profiles of different columns: {_diff(self, other)}")
        if (self.predictions is None) != (other.predictions is None):
            raise InvalidInput("cannot merge a profile with predictions and one without")
        merged = tuple(c.merge(other.column(c.name)) for c in self.column_profiles)
        predictions = None
        if self.predictions is not None and other.predictions is not None:
            predictions = self.predictions.merge(other.predictions)
        return Profile(self.row_count + other.row_count, merged, predictions)

    def with_predictions(self, predictions: Profile | None) -> Profile:
        """This profile with ``predictions`` as its prediction profile."""
        return replace(self, predictions=predictions)

    def select(self, names: Sequence[str]) -> Profile:
        """This profile with only the columns ``names``, in that order.

        Raises:
            KeyError: a name is not a column.
        """
        return replace(self, column_profiles=tuple(self.column(n) for n in names))

    def renamed(self, names: Mapping[str, str]) -> Profile:
        """This profile with columns renamed (``old -> new``; others keep their names).

        Raises:
            InvalidInput: two columns would share a name.
        """
        columns = tuple(replace(c, name=names.get(c.name, c.name)) for c in self.column_profiles)
        taken = [c.name for c in columns]
        clashes = sorted({n for n in taken if taken.count(n) > 1})
        if clashes:
            raise InvalidInput(f"renaming would give two columns the name {', '.join(clashes)}")
        return replace(self, column_profiles=columns)

    # -- reading -----------------------------------------------------------------------------

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, in table order."""
        return tuple(c.name for c in self.column_profiles)

    def column(self, name: str) -> ColumnProfile:
        """The profile of column ``name``.

        Raises:
            KeyError: no such column.
        """
        for c in self.column_profiles:
            if c.name == name:
                return c
        raise KeyError(name)

    def summary(self) -> dict[str, Any]:
        """A small JSON-able description: row count, column order, and per column its kind,
        present and missing counts, and for numbers min, max and mean (the shape the model
        verification ranges read)."""
        features: dict[str, Any] = {}
        for c in self.column_profiles:
            entry: dict[str, Any] = {"kind": c.kind, "count": c.present, "missing": c.missing}
            if c.numbers is not None:
                entry.update(min=c.numbers.min, max=c.numbers.max, mean=c.numbers.mean)
            if c.categories is not None:
                entry["distinct"] = c.categories.distinct()
            features[c.name] = entry
        return {"row_count": self.row_count, "columns": list(self.columns), "features": features}

    def to_bytes(self) -> bytes:
        """The deterministic binary form (see ``codec``): the same profile, the same bytes."""
        from modelyard.monitoring.codec import encode

        return encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Read :meth:`to_bytes` output.

        Raises:
            InvalidInput: the bytes are not a profile this version of modelyard reads.
        """
        from modelyard.monitoring.codec import decode

        return decode(data)


def column_profile(name: str, column: pd.Series) -> ColumnProfile:
    """Sketch one column (its kind chosen from its type, see the module docstring)."""
    from pandas.api import types

    if types.is_numeric_dtype(column.dtype) and not types.is_complex_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return ColumnProfile(name, "numeric", numbers=NumericSketch.of(values))
    if types.is_datetime64_any_dtype(column.dtype):
        return ColumnProfile(name, "numeric", numbers=NumericSketch.of(_epoch_seconds(column)))
    inferred = types.infer_dtype(column, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "boolean"):
        values = np.asarray(column.astype("float64"), dtype=np.float64)
        return ColumnProfile(name, "numeric", numbers=NumericSketch.of(values))
    if inferred == "empty" and column.dtype == object:  # nothing but missing values
        return ColumnProfile(
            name, "numeric", numbers=NumericSketch.of(np.full(len(column), np.nan))
        )
    lengths = None
    if inferred == "string":
        lengths = NumericSketch.of(column.str.len().to_numpy(dtype=np.float64, na_value=np.nan))
    return ColumnProfile(name, "categorical", categories=Frequencies.of(column), lengths=lengths)


def prediction_frame(predictions: Any) -> pd.DataFrame:
    """Predictions as a table: a DataFrame keeps its column names; a 1-D array (or one column)
    is named ``prediction``; k columns are named ``0`` .. ``k-1`` (as captured rows name
    outputs)."""
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return predictions.set_axis([str(c) for c in predictions.columns], axis=1)
    if isinstance(predictions, pd.Series):
        return pd.DataFrame({PREDICTION: predictions.to_numpy()})
    array = np.asarray(predictions)
    if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1):
        return pd.DataFrame({PREDICTION: array.reshape(len(array))})
    if array.ndim == 2:
        return pd.DataFrame({str(i): array[:, i] for i in range(array.shape[1])})
    raise InvalidInput(f"predictions must be one or two dimensional, got shape {array.shape}")


def _epoch_seconds(column: pd.Series) -> np.ndarray:
    import pandas as pd

    stamps = pd.to_datetime(column, utc=True)
    seconds = stamps.astype("int64").to_numpy(dtype=np.float64) / 1e9
    seconds[stamps.isna().to_numpy()] = np.nan
    return seconds


def _empty_like(template: ColumnProfile, missing: int) -> ColumnProfile:
    """A column of ``missing`` missing values, of ``template``'s kind and sketch settings."""
    numbers = categories = lengths = None
    if template.numbers is not None:
        numbers = replace(NumericSketch.empty(template.numbers.cap), missing=missing)
    if template.categories is not None:
        categories = Frequencies((), 0, missing, keep=template.categories.keep)
    if template.lengths is not None:
        lengths = replace(NumericSketch.empty(template.lengths.cap), missing=missing)
    return ColumnProfile(template.name, template.kind, numbers, categories, lengths)


def _merged(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return a if b is None else b
    return a.merge(b)


def _merged_lengths(a: ColumnProfile, b: ColumnProfile) -> NumericSketch | None:
    """Lengths are kept when every present value is a string: both sides have them, or one
    side has them and the other has no present value at all."""
    if a.lengths is not None and b.lengths is not None:
        return a.lengths.merge(b.lengths)
    for have, other in ((a, b), (b, a)):
        if have.lengths is not None and not other.present:
            return replace(have.lengths, missing=have.lengths.missing + other.missing)
    return None


def _diff(a: Profile, b: Profile) -> str:
    only_a = [c for c in a.columns if c not in set(b.columns)]
    only_b = [c for c in b.columns if c not in set(a.columns)]
    parts = []
    if only_a:
        parts.append(f"only in the first: {', '.join(only_a)}")
    if only_b:
        parts.append(f"only in the second: {', '.join(only_b)}")
    return "; ".join(parts)
