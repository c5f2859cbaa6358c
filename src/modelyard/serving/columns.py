"""A bounded buffer of records kept column by column: filled on the event loop, emptied by one
background thread, without a lock and without leaving garbage-collector work behind.

Capture and metrics remember every request they see until a background thread folds it in
(every second): at 10,000 requests a second, tens of thousands of records wait at any time.
Kept as one tuple or object per request, each would be an object the cyclic garbage collector
tracks; they outlive several young collections, get promoted, and make the collector walk them
again and again (measured: 2-4 us a request, as much as the rest of the monitoring). Kept as a
few long-lived columns of values the collector does not track (strings, NumPy arrays, the
long-lived variant routes; numbers stored in place in :mod:`array` columns), a request leaves
no tracked object behind, and the thread that takes them gets its columns ready for NumPy.

Protocol (one producer, the event loop; one consumer thread):

- the producer appends one value to every column, then adds one to ``added``;
- the consumer reads ``added`` (so it sees only whole records), cuts that many values from the
  front of every column, then adds as many to ``taken``.

Each list (or array) operation is atomic under the GIL and the two ends never touch the same
entries, so no lock is needed; each counter has a single writer, so ``added - taken`` (the
records waiting) never goes wrong.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import numpy as np


class ColumnBuffer:
    """Records of ``len(kinds)`` fields, one column each (see the module docstring).

    Args:
        kinds: One letter per column: ``o`` for any object (a list), or an :mod:`array`
            type code (``d`` float64, ``q`` int64) for numbers stored in place, so that no
            number object per request is kept either, and NumPy reads the column as is.
        limit: Records held at most; :meth:`room` says whether one more fits.

    Attributes:
        columns: The columns; producers bind their ``append`` methods once.
        added: Records appended whole (written by the producer only).
        taken: Records taken (written by the consumer only).
    """

    __slots__ = ("added", "columns", "limit", "taken")

    def __init__(self, kinds: str, limit: int) -> None:
        self.columns: tuple[Any, ...] = tuple(column(kind) for kind in kinds)
        self.limit = limit
        self.added = 0
        self.taken = 0

    def __len__(self) -> int:
        return self.added - self.taken

    def room(self) -> bool:
        """Whether one more record fits under ``limit``."""
        return self.added - self.taken < self.limit

    def append(self, *values: Any) -> None:
        """Append one record (the slow, general way; hot paths inline it). No bound check."""
        for values_of, value in zip(self.columns, values, strict=True):
            values_of.append(value)
        self.added += 1

    def take(self) -> tuple[Any, ...]:
        """Every whole record appended so far, column by column, in order (the consumer)."""
        n = self.added - self.taken
        out = take(self.columns, n)
        self.taken += n
        return out


class Sparse:
    """A field few records have (a caller's own request id), kept as two columns of
    ``(record position, value)`` pairs: a record without one appends nothing.

    Same protocol as :class:`ColumnBuffer`: the producer appends a record's pair before it
    counts the record; the consumer takes the pairs of the records it took (positions below
    the count it read), so a pair of a record not yet counted waits for the next take.

    Attributes:
        at: Record positions (the producer's count before the record), ascending.
        values: One value per position.
    """

    __slots__ = ("at", "values")

    def __init__(self) -> None:
        self.at = array("q")
        self.values: list[Any] = []

    def take(self, end: int) -> tuple[np.ndarray, list[Any]]:
        """The pairs of records at positions below ``end``, cut from the columns (the
        consumer)."""
        at, values = take((self.at, self.values), bisect_left(self.at, end))
        return numbers(at), values


def placed(n: int, index: np.ndarray, values: list[Any]) -> list[Any] | None:
    """``n`` values, ``values`` at positions ``index`` and None elsewhere; None (no list)
    when ``values`` is empty, the usual case."""
    if not values:
        return None
    out: list[Any] = [None] * n
    for i, value in zip(index.tolist(), values, strict=True):
        out[i] = value
    return out


def column(kind: str) -> Any:
    """An empty column of ``kind`` (see :class:`ColumnBuffer`)."""
    return [] if kind == "o" else array(kind)


def take(columns: Sequence[Any], n: int) -> tuple[Any, ...]:
    """The first ``n`` values of every column, cut from it."""
    out = []
    for values in columns:
        out.append(values[:n])
        del values[:n]
    return tuple(out)


def numbers(values: Any) -> np.ndarray:
    """A taken column of numbers as an array (an :mod:`array` column's without a copy)."""
    if isinstance(values, array):
        return np.frombuffer(values, dtype=np.float64 if values.typecode == "d" else np.int64)
    return np.array(values)


def grouped(*keys: list[Any]) -> list[tuple[tuple[Any, ...], np.ndarray | None]]:
    """Records grouped by their values in the ``keys`` columns, in order of first appearance:
    each group's key values and its records' positions (None: every record, the usual case
    of a single group, found without a loop over the records in Python)."""
    if not keys or not keys[0]:
        return []
    # ``count`` compares by identity first, then by value: no hash of each request's fresh
    # endpoint string, as a set would compute.
    if all(column.count(column[0]) == len(column) for column in keys):
        return [(tuple(column[0] for column in keys), None)]
    codes: dict[tuple[Any, ...], int] = {}
    index = np.fromiter(
        (codes.setdefault(key, len(codes)) for key in zip(*keys, strict=True)),
        dtype=np.int64,
        count=len(keys[0]),
    )
    order = np.argsort(index, kind="stable")
    parts = np.split(order, np.flatnonzero(np.diff(index[order])) + 1)
    return list(zip(codes, parts, strict=True))


def picked(column: list[Any], at: np.ndarray | None) -> list[Any]:
    """The values of ``column`` at positions ``at`` (None: all of them)."""
    if at is None:
        return column
    return [column[i] for i in at.tolist()]
