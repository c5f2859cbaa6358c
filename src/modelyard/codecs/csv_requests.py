"""``text/csv`` request bodies: rows of numbers, no header row (SageMaker's ``text/csv``).

A body of plain numbers (digits, signs, points, exponents, separators) is read as JSON by
orjson, several times faster than ``float()``; anything else (an empty field, ``nan``, quotes,
blank lines, a lone CR) takes the slow pass, which reads field by field with :mod:`csv` and
names the line and column of the first field that is not a number of
:mod:`~modelyard.domain.numbers`.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

import numpy as np
import orjson

from modelyard.codecs.json_shapes import NO_ROWS, Matrix, clip
from modelyard.domain.numbers import NOT_NUMERAL_CHARS, parse_number
from modelyard.errors import InvalidPayload

if TYPE_CHECKING:
    from _csv import Reader

__all__ = ["csv_number", "decode_csv", "rows_reader"]

# Bytes a CSV body of plain numbers is made of; such a body is parsed as JSON by orjson, which
# reads numbers several times faster than float(); anything else takes the slow, naming path.
_CSV_PLAIN = b"0123456789.,eE+- \t\r\n"
_BOM = b"\xef\xbb\xbf"
# The bytes of a CSV body of numbers: separators, and what the numbers of
# :mod:`~modelyard.domain.numbers` are written with. Not a quote: a quoted field may hold a line
# end, which float() takes.
_CSV_NUMERAL_BYTES = b"0123456789.eE+-nNaAiIfFtTyY \t,\r\n"
_INF = float("inf")
_NINF = -_INF
_CR = ord("\r")
#: The longest field :mod:`csv` reads: its default, 128 KiB, refused a longer field (a document
#: for a text model, a numeral of many digits) as malformed CSV, in a body under the payload
#: limit. The body's size is the only bound a field needs; this is the largest the module
#: takes on every platform (a C long). The limit is the module's, so it is set for the process.
FIELD_SIZE_LIMIT = 2**31 - 1


def decode_csv(body: bytes) -> Matrix:
    """A ``text/csv`` request body as rows x features (no header row; an empty field is
    missing, NaN).

    Raises:
        InvalidPayload: no rows, rows of other widths, or a field that is not a number
            (named with its line and column).
    """
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    body = body.rstrip(b" \t\r\n")  # not \v or \f: "1\v" is no number
    if not body:
        raise InvalidPayload(NO_ROWS)
    # A lone \r ends a line (RFC 4180 readers agree), but JSON would read it as a space.
    lone_cr = _CR in body and body.count(b"\r") != body.count(b"\r\n")
    if not lone_cr and not body.translate(None, _CSV_PLAIN):
        # Blank lines first are skipped here; any in between take the slow path, which also
        # keeps the line numbers of the body as sent.
        text = b"[[" + body.lstrip().replace(b"\n", b"],[") + b"]]"
        array = _json_matrix(text)
        if array is None:
            # Empty fields (missing values) as JSON nulls, which numpy reads as NaN; done only
            # on failure, as these scans cost more than the parse on a large body.
            # Only the \r of \r\n goes: a lone \r is a line end too, and "2\r3" is not 23.
            text = text.replace(b"\r]", b"]").replace(b",,", b",null,").replace(b",,", b",null,")
            array = _json_matrix(text.replace(b"[,", b"[null,").replace(b",]", b",null]"))
        if array is not None:
            return array
    # "+1", ".5", " , ", "nan", quotes, blank lines, 1e400, ragged rows: the slow path knows
    return _csv_rows(body)


def _json_matrix(text: bytes) -> Matrix | None:
    try:
        array = np.array(orjson.loads(text), np.float64)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    return array if array.ndim == 2 else None


def _csv_rows(body: bytes) -> Matrix:
    """The slow CSV pass: field by field, naming the line and column of the first bad one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"the CSV body is not UTF-8 text: {exc}") from None
    rows: list[list[float]] = []
    width = first = -1
    # float() takes "1_000", "١٢", "1\n": only a body with a byte no number holds, or a
    # quote, needs each row's fields checked once float() has taken them.
    check = bool(body.translate(None, _CSV_NUMERAL_BYTES))
    reader = rows_reader(text)
    try:
        for fields in reader:
            # A blank line reads as [] and a line of spaces as [" "]; a quoted "" is [""].
            if not fields or (len(fields) == 1 and fields[0] and fields[0].isspace()):
                continue
            number = reader.line_num
            if width < 0:
                width, first = len(fields), number
            elif len(fields) != width:
                raise InvalidPayload(
                    f"line {number} has {len(fields)} fields, line {first} has {width}"
                )
            try:
                values = list(map(float, fields))
            except ValueError:  # an empty field (missing value) or text: field by field
                values = [csv_number(f, number, c, number == first) for c, f in enumerate(fields)]
            else:
                if (
                    _INF in values  # "inf" is kept, "1e400" refused
                    or _NINF in values
                    or (check and NOT_NUMERAL_CHARS("".join(fields)) is not None)
                ):
                    values = [csv_number(f, number, c, False) for c, f in enumerate(fields)]
            rows.append(values)
    except csv.Error as exc:
        hint = " (a quoted field is never closed)" if "end of data" in str(exc) else ""
        raise InvalidPayload(f"line {reader.line_num}: malformed CSV: {exc}{hint}") from None
    if not rows:  # only lines of Unicode spaces (no-break spaces), which bytes.rstrip keeps
        raise InvalidPayload(NO_ROWS)
    return np.array(rows, dtype=np.float64)


def rows_reader(text: str) -> Reader:
    """A strict RFC 4180 reader of a request body's text (``\\r\\n``, ``\\n`` or ``\\r`` line
    ends; quoted fields), taking fields of any length the body holds."""
    if csv.field_size_limit() < FIELD_SIZE_LIMIT:
        csv.field_size_limit(FIELD_SIZE_LIMIT)
    return csv.reader(io.StringIO(text, newline=""), strict=True)


def csv_number(field: str, line: int, column: int, first: bool) -> float:
    value = field.strip(" \t")
    if not value:
        return np.nan
    try:
        return parse_number(value)
    except ValueError:
        header = " (a CSV request has no header row)" if first else ""
        problem = f"cannot read {clip(value)} as a number{header}"
    except OverflowError:
        problem = f"{clip(value)} is too large for a float"
    raise InvalidPayload(f"line {line}, column {column + 1}: {problem}")
