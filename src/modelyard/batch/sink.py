"""Where the records of one work unit go: predictions to the unit's output part, bad records
to its errors part, and the counts to its result.

Bad records are budgeted: past ``max_errors`` bad records in one unit, :meth:`Sink.bad` raises
:class:`BudgetExceeded` and the unit stops (the coordinator sums the units' counts against the
same budget). The errors part holds one JSON object a line, ``{"line": n, "reason": …}`` with
``n`` counted from the unit's first line (0-based) for text files, or ``{"record": n, …}``
(1-based, in the file) for Parquet and whole-file records; the coordinator rewrites them with
the file's name and line numbers when it assembles ``<name>.errors.jsonl``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

import orjson

from modelyard.batch.filters import FilterError
from modelyard.errors import ModelyardError

__all__ = ["RECORD_ERRORS", "BudgetExceeded", "Sink", "UnitResult", "reason"]

#: What one bad record raises: a payload or signature error, a model failure, a filter miss.
RECORD_ERRORS: tuple[type[Exception], ...] = (ModelyardError, FilterError)


class BudgetExceeded(Exception):
    """More bad records in one unit than the job's budget allows."""


def reason(exc: BaseException) -> str:
    """The one-line reason a bad record is reported with."""
    return str(exc) or type(exc).__name__


@dataclass(frozen=True, slots=True)
class UnitResult:
    """What one finished (or abandoned) unit reports.

    Attributes:
        key: The unit's manifest key. file, index: which unit of which file.
        rows_in: Records read. rows_out: written. rows_failed: bad.
        fast_rows: Records that took the columnar fast path.
        lines: Lines the unit held (text files; 0 for Parquet).
        first_offset: Byte offset of its first line (text files).
        first_error: (line within the unit or record number, reason) of its first bad record.
        rounded: Values that lost precision in the cast to the model's float32 input type.
        first_rounded: The line (within the unit) or record number of the first of them.
        exceeded: The unit stopped because its bad records passed the budget (nothing of it
            was recorded).
    """

    key: str
    file: int
    index: int
    rows_in: int = 0
    rows_out: int = 0
    rows_failed: int = 0
    fast_rows: int = 0
    lines: int = 0
    first_offset: int = 0
    first_error: tuple[int, str] | None = None
    exceeded: bool = False
    rounded: int = 0
    first_rounded: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_failed": self.rows_failed,
            "fast_rows": self.fast_rows,
            "lines": self.lines,
            "first_offset": self.first_offset,
            "first_error": list(self.first_error) if self.first_error else None,
            "rounded": self.rounded,
            "first_rounded": self.first_rounded,
        }

    @classmethod
    def from_dict(cls, key: str, file: int, index: int, data: dict[str, Any]) -> UnitResult:
        first = data.get("first_error")
        return cls(
            key=key,
            file=file,
            index=index,
            rows_in=int(data["rows_in"]),
            rows_out=int(data["rows_out"]),
            rows_failed=int(data["rows_failed"]),
            fast_rows=int(data.get("fast_rows", 0)),
            lines=int(data.get("lines", 0)),
            first_offset=int(data.get("first_offset", 0)),
            first_error=(int(first[0]), str(first[1])) if first else None,
            rounded=int(data.get("rounded", 0)),
            first_rounded=data.get("first_rounded"),
        )


class Sink:
    """Counts and collects one unit's output.

    Args:
        out: The unit's output part, open for writing.
        max_errors: The job's bad-record budget.
        by_record: Bad records are numbered by record (Parquet, whole files), not by line.
    """

    def __init__(self, out: IO[bytes], max_errors: int, by_record: bool = False) -> None:
        self.out = out
        self._budget = max_errors
        self._field = "record" if by_record else "line"
        self.rows_in = self.rows_out = self.rows_failed = self.fast_rows = 0
        self.errors = bytearray()
        self.first_error: tuple[int, str] | None = None
        self.rounded = 0
        self.first_rounded: int | None = None

    def note_rounded(self, count: int, at: int) -> None:
        """``count`` values of good records lost precision as float32, the first at line
        (or record) ``at``."""
        if count:
            self.rounded += count
            if self.first_rounded is None:
                self.first_rounded = at

    def write(self, data: bytes, rows: int) -> None:
        """Write the output of ``rows`` good records."""
        if data:
            self.out.write(data)
        self.rows_out += rows

    def bad(self, at: int, why: str) -> None:
        """Record a bad record (its line in the unit, or its record number).

        Raises:
            BudgetExceeded: past the budget.
        """
        self.rows_failed += 1
        if self._field == "line":
            # The codec names the line of the body it was handed, a record alone: "line 1, "
            # before a column, "line 1: " before malformed CSV. The file's line is ``at``.
            why = why.removeprefix("line 1, ").removeprefix("line 1: ")
        if self.first_error is None:
            self.first_error = (at, why)
        self.errors += orjson.dumps({self._field: at, "reason": why}) + b"\n"
        if self.rows_failed > self._budget:
            raise BudgetExceeded
