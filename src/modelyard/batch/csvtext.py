"""One CSV line as fields, and fields as one CSV line (the :mod:`csv` module's rules)."""

from __future__ import annotations

import csv
import io

from modelyard.errors import InvalidPayload

__all__ = ["csv_fields", "csv_line"]


def csv_fields(line: bytes) -> list[str]:
    """The fields of one CSV line.

    Raises:
        InvalidPayload: not UTF-8, or malformed (an unclosed quote).
    """
    try:
        return next(csv.reader([line.decode("utf-8")], strict=True), [])
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"the line is not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise InvalidPayload(f"malformed CSV: {exc}") from None


def csv_line(fields: list[object]) -> bytes:
    """Fields as one CSV line (minimal quoting), ending with ``\\n``."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue().encode()
