"""CSV read as RFC 4180, and the rules CSV and JSON share: a value is read (or refused) the same
way whichever format carries it: missing values, infinity, overflow, a byte order mark."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from modelyard.codecs.payloads import decode
from modelyard.domain.numbers import parse_number
from modelyard.domain.signature import ColumnSpec, Signature
from modelyard.errors import InvalidPayload

JSON = "application/json"
CSV = "text/csv"
NAMED = Signature(inputs=(ColumnSpec("float64", "a"), ColumnSpec("float64", "b")))
ONE = Signature(inputs=(ColumnSpec("float64", "x"),))
EXPECTED = [[1.0, 2.0], [3.0, 4.0]]
BOM = b"\xef\xbb\xbf"


def same(array: np.ndarray, expected: list[list[float]]) -> None:
    assert array.dtype == np.float64 and array.flags.c_contiguous
    np.testing.assert_array_equal(array, np.asarray(expected, dtype=np.float64))


# --- CSV: quoting, blank lines, line ends -------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'"1","2"\n"3","4"\n',
        b'"1",2\r\n3,"4"\r\n',
        b'" 1 ","2.0"\n3,4',
        b"\n\n1,2\n3,4",
        b"1,2\n\n\n3,4\n",
        b"\r\n1,2\r\n\r\n3,4\r\n\r\n",
        b"  \n1,2\n \t \n3,4\n   \n",
        b"1,2\r3,4\r",
    ],
    ids=[
        "all-quoted",
        "some-quoted-crlf",
        "quoted-spaces",
        "leading-blank",
        "blank-between",
        "crlf-blanks",
        "lines-of-spaces",
        "cr-only",
    ],
)
def test_csv_quoted_fields_and_blank_lines(body: bytes) -> None:
    same(decode(body, CSV, NAMED), EXPECTED)


@pytest.mark.parametrize(
    "quoting", [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC], ids=["min", "all", "nn"]
)
def test_csv_reads_what_the_csv_module_writes(quoting: int) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=quoting).writerows([[1.5, ""], [-2.0, 1e-300]])  # \r\n endings
    array = decode(buffer.getvalue().encode(), CSV, NAMED)
    assert array[0, 0] == 1.5 and math.isnan(array[0, 1])
    assert array[1].tolist() == [-2.0, 1e-300]


def test_csv_a_lone_carriage_return_ends_a_line_even_with_missing_values() -> None:
    # The fast path's retry for empty fields once dropped every \r, reading "2\r3" as 23.
    array = decode(b"1,,2\r3,4,", CSV, None)
    np.testing.assert_array_equal(array, [[1.0, np.nan, 2.0], [3.0, 4.0, np.nan]])


def test_csv_one_column_missing_value_is_a_quoted_empty_field() -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[1.0], [""], [3.0]])  # the empty row is written as ""
    array = decode(buffer.getvalue().encode(), CSV, ONE)
    assert array.shape == (3, 1) and math.isnan(array[1, 0])
    assert array[[0, 2], 0].tolist() == [1.0, 3.0]
    same(decode(b"\n1\n\n3\n\n", CSV, ONE), [[1.0], [3.0]])  # blank lines are not rows


def test_csv_errors_name_the_line_as_sent() -> None:
    with pytest.raises(InvalidPayload, match=r"line 4, column 2: cannot read 'x' as a number"):
        decode(b"\n1,2\n\n3,x\n", CSV, None)
    with pytest.raises(InvalidPayload, match="line 3 has 1 fields, line 2 has 2"):
        decode(b"\n1,2\n3\n", CSV, None)
    # A quoted field may span lines (RFC 4180 2.6): the record ends on line 3.
    with pytest.raises(InvalidPayload, match=r"line 3, column 2: cannot read '2"):
        decode(b'1,2\n3,"2\nx"\n', CSV, None)


def test_csv_header_hint_on_the_first_row_after_blank_lines() -> None:
    with pytest.raises(InvalidPayload, match=r"line 2, column 1: cannot read 'a'.*no header row"):
        decode(b'\n"a","b"\n1,2\n', CSV, NAMED)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'1,2\n"3,4\n5,6', r"line 3: malformed CSV: .*a quoted field is never closed"),
        (b'1,2\n"3"x,4\n', r"line 2: malformed CSV: ',' expected after '\"'"),
    ],
    ids=["unclosed", "text-after-quote"],
)
def test_csv_malformed_quoting_names_the_line(body: bytes, words: str) -> None:
    with pytest.raises(InvalidPayload, match=words):
        decode(body, CSV, None)


@pytest.mark.parametrize("body", [b"\n\n  \n", BOM + b"\r\n\t\r\n", " \u00a0\n\u00a0".encode()])
def test_csv_only_blank_lines_hold_no_rows(body: bytes) -> None:
    with pytest.raises(InvalidPayload, match="no rows in the request"):
        decode(body, CSV, None)


def test_csv_a_large_body_takes_the_slow_path_only_where_needed() -> None:
    rows = [[float(i), float(-i)] for i in range(1000)]
    plain = "\n".join(f"{a!r},{b!r}" for a, b in rows).encode()
    same(decode(plain.replace(b"\n", b"\n\n"), CSV, NAMED), rows)
    quoted = "\n".join(f'"{a!r}","{b!r}"' for a, b in rows).encode()
    same(decode(quoted, CSV, NAMED), rows)
    with pytest.raises(InvalidPayload, match=r"line 501, column 1: '1e400' is too large"):
        decode(plain.replace(b"\n500.0,", b"\n1e400,"), CSV, NAMED)


# --- one rule for both formats ------------------------------------------------------------

# (CSV field, JSON token, value): the same value spelled in each format.
ACCEPTED = [
    ("1.5", "1.5", 1.5),
    ('"1.5"', '"1.5"', 1.5),
    ("1e308", "1e308", 1e308),
    ("1e-400", "1e-400", 0.0),
    ("-0.0", "-0.0", -0.0),
    ("inf", '"inf"', math.inf),
    ("-Infinity", "-Infinity", -math.inf),
    ("+inf", '"+Infinity"', math.inf),
    ("nan", "NaN", math.nan),
    ("NaN", '"nan"', math.nan),
    ("", "null", math.nan),
    ('""', "null", math.nan),
]
# (CSV field, JSON token, words of the refusal)
REFUSED = [
    ("1e400", "1e400", "'1e400' is too large for a float"),
    ("-1e400", "-1e400", "'-1e400' is too large for a float"),
    ("1e400", '"1e400"', "'1e400' is too large for a float"),
    ("-1E999", '"-1E999"', "'-1E999' is too large for a float"),
    ("1" + "0" * 400, "1" + "0" * 400, "is too large for a float"),
    ("abc", '"abc"', "cannot read 'abc' as a number"),
    # float() and numpy read these; they are not numbers as CSV or JSON writers write them.
    ("1_000", '"1_000"', "cannot read '1_000' as a number"),
    ("2.5_0", '"2.5_0"', "cannot read '2.5_0' as a number"),
    ("\u0661\u0662", '"\u0661\u0662"', "cannot read '\u0661\u0662' as a number"),
    ("\u0661\u0662", '"\\u0661\\u0662"', "cannot read '\u0661\u0662' as a number"),
    ("\uff11", '"\\uff11"', "cannot read '\uff11' as a number"),
    ("\u00a01", '"\\u00a01"', "cannot read '\\xa01' as a number"),
    ("1\u2003", '"1\u2003"', "cannot read '1\\u2003' as a number"),
    ("\x0c1", '"\\f1"', "cannot read '\\x0c1' as a number"),
    ("1\x0b", '"1\\u000b"', "cannot read '1\\x0b' as a number"),
]
JSON_SHAPES = {
    "rows": "[[7, {}]]",
    "flat": "[7, {}]",
    "records": '[{{"a": 7, "b": {}}}]',
    "columns": '{{"inputs": {{"a": [7], "b": [{}]}}}}',
    "instances": '{{"instances": [[7, {}]]}}',
}


def bodies(field: str, token: str) -> dict[str, tuple[bytes, str]]:
    found = {"csv": (f"7,{field}\n".encode(), CSV), "csv-crlf": (f"7,{field}\r\n".encode(), CSV)}
    for shape, template in JSON_SHAPES.items():
        found[f"json-{shape}"] = (template.format(token).encode(), JSON)
    return found


@pytest.mark.parametrize(
    ("field", "token", "value"), ACCEPTED, ids=[a[0] or "empty" for a in ACCEPTED]
)
def test_a_value_reads_the_same_in_csv_and_json(field: str, token: str, value: float) -> None:
    for name, (body, media) in bodies(field, token).items():
        array = decode(body, media, NAMED)
        assert array.shape == (1, 2) and array[0, 0] == 7.0, name
        got = array[0, 1]
        if math.isnan(value):
            assert math.isnan(got), name
        else:
            assert got == value and math.copysign(1, got) == math.copysign(1, value), name


@pytest.mark.parametrize(("field", "token", "words"), REFUSED, ids=[r[1][:12] for r in REFUSED])
def test_a_value_is_refused_the_same_in_csv_and_json(field: str, token: str, words: str) -> None:
    for name, (body, media) in bodies(field, token).items():
        with pytest.raises(InvalidPayload) as info:
            decode(body, media, NAMED)
        message = str(info.value)
        place = "line 1, column 2" if media == CSV else "row 1, column 2"
        assert message.startswith(place) and words in message, (name, message)


def test_json_overflow_in_a_large_body_names_its_row() -> None:
    rows = ",".join(f"[{i}, 1]" for i in range(1000))
    with pytest.raises(InvalidPayload, match=r"row 501, column 1 \(feature 'a'\): '1e400' is"):
        decode(f"[{rows}]".replace("[500, ", "[1e400, ").encode(), JSON, NAMED)
    with pytest.raises(InvalidPayload, match=r"row 501, column 1 \(feature 'a'\): '-1e999'"):
        decode(f"[{rows}]".replace("[500, ", '["-1e999", ').encode(), JSON, NAMED)


@pytest.mark.parametrize(
    ("body", "media"),
    [
        (b"1,2\n3,4\n", CSV),
        (b'"1",2\n3,4\n', CSV),
        (b"[[1, 2], [3, 4]]", JSON),
        (b'[{"a": 1, "b": 2}, {"a": 3, "b": 4}]', JSON),
        (b"[[1, 2], [3, NaN]]", JSON),
    ],
    ids=["csv", "csv-quoted", "json-rows", "json-records", "json-nan-token"],
)
def test_a_byte_order_mark_is_skipped_in_both_formats(body: bytes, media: str) -> None:
    np.testing.assert_array_equal(decode(BOM + body, media, NAMED), decode(body, media, NAMED))


def test_a_byte_order_mark_alone_or_before_bad_json() -> None:
    for media in (CSV, JSON):
        with pytest.raises(InvalidPayload, match="no rows in the request"):
            decode(BOM, media, None)
    with pytest.raises(InvalidPayload, match="malformed JSON"):
        decode(BOM + b"[[1, 2],", JSON, None)
    with pytest.raises(InvalidPayload, match="malformed JSON"):  # one mark is skipped, not many
        decode(BOM * 100_000 + b"[1]", JSON, None)
    with pytest.raises(InvalidPayload, match="line 1, column 1: cannot read"):
        decode(BOM * 2 + b"1", CSV, None)


@pytest.mark.parametrize("media", [CSV, JSON])
def test_a_body_that_is_not_utf8_is_refused_in_both_formats(media: str) -> None:
    body = b'[["1", "\xff"]]' if media == JSON else b'"1","\xff"\n'
    with pytest.raises(InvalidPayload, match="UTF-8"):
        decode(body, media, None)


def test_parse_number() -> None:
    assert parse_number(" 2.5 ") == 2.5
    assert parse_number("-INFINITY") == -math.inf and parse_number("inf") == math.inf
    assert math.isnan(parse_number("nan"))
    assert parse_number("1.7976931348623157e308") == 1.7976931348623157e308
    with pytest.raises(OverflowError, match="1e309"):
        parse_number("1e309")
    with pytest.raises(ValueError):
        parse_number("infinite")
    assert parse_number("\t+.5e-3 ") == 0.0005 and parse_number("5.") == 5.0


@pytest.mark.parametrize(
    "text",
    ["1_000", "\u0661", "\uff11", "\u00a01", "1\n", "\r1", "\x1c1", "0x10", "1e", ".", "+", ""],
)
def test_parse_number_takes_ascii_decimals_only(text: str) -> None:
    with pytest.raises(ValueError, match="is not a decimal number"):
        parse_number(text)


def test_a_line_end_inside_a_quoted_number_is_refused() -> None:
    csv_words = r"line 2, column 2: cannot read '1\\n' as a number"
    with pytest.raises(InvalidPayload, match=csv_words):
        decode(b'7,"1\n"\n', CSV, NAMED)
    json_words = r"row 1, column 2 \(feature 'b'\): cannot read '1\\n'"
    with pytest.raises(InvalidPayload, match=json_words):
        decode(b'[[7, "1\\n"]]', JSON, NAMED)
