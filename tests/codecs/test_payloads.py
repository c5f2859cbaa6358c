"""Request/response codecs of the inference server: every JSON shape, CSV, errors, negotiation."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson
import pytest

from modelyard.codecs.payloads import SUPPORTED_CONTENT_TYPES, decode, encode, negotiate
from modelyard.domain.signature import ColumnSpec, Signature
from modelyard.errors import (
    InvalidPayload,
    ModelFailed,
    NotAcceptable,
    SignatureMismatch,
    UnsupportedMediaType,
)

JSON = "application/json"
CSV = "text/csv"
NAMED = Signature(inputs=(ColumnSpec("float64", "a"), ColumnSpec("float64", "b")))
NAMED3 = Signature(inputs=tuple(ColumnSpec("float64", n) for n in ("a", "b", "c")))
UNNAMED = Signature(inputs=(ColumnSpec("float64"), ColumnSpec("float64")))
ONE = Signature(inputs=(ColumnSpec("float64", "x"),))
TEXT = Signature(inputs=(ColumnSpec("float64", "a"), ColumnSpec("str", "b")))
EXPECTED = np.array([[1.0, 2.0], [3.0, 4.0]])


def check(array: np.ndarray, expected: list[list[float]] | np.ndarray) -> None:
    assert array.dtype == np.float64
    assert array.ndim == 2
    assert array.flags.c_contiguous
    np.testing.assert_array_equal(array, np.asarray(expected, dtype=np.float64))


# --- JSON shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        [[1, 2], [3, 4]],
        {"instances": [[1, 2], [3, 4]]},
        {"inputs": [[1, 2], [3, 4]]},
        [{"a": 1, "b": 2}, {"a": 3, "b": 4}],
        {"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        {"inputs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        {"inputs": {"a": [1, 3], "b": [2, 4]}},
        {"inputs": {"a": [1.0, 3.0], "b": [2.0, 4.0]}, "parameters": {"ignored": True}},
    ],
    ids=[
        "rows",
        "instances",
        "inputs-rows",
        "records",
        "instances-records",
        "inputs-records",
        "columns",
        "columns-extra-key",
    ],
)
@pytest.mark.parametrize("signature", [None, NAMED, UNNAMED], ids=["nosig", "named", "unnamed"])
def test_json_shapes_decode_to_rows(payload: object, signature: Signature | None) -> None:
    body = orjson.dumps(payload)
    if signature is UNNAMED and b'"a"' in body:  # named inputs: see the test below
        with pytest.raises(SignatureMismatch, match="features have no names"):
            decode(body, JSON, signature)
        return
    check(decode(body, JSON, signature), EXPECTED)


def test_a_flat_list_is_one_row() -> None:
    check(decode(b"[1, 2.5, 3]", JSON, None), [[1.0, 2.5, 3.0]])
    check(decode(b"[1, 2.5]", JSON, NAMED), [[1.0, 2.5]])


def test_a_flat_list_is_a_column_for_a_one_feature_model() -> None:
    check(decode(b"[1, 2, 3]", JSON, ONE), [[1.0], [2.0], [3.0]])
    check(decode(b'{"instances": [1, 2]}', JSON, ONE), [[1.0], [2.0]])
    check(decode(b"[7]", JSON, ONE), [[7.0]])


def test_a_single_record_and_scalar_columns() -> None:
    check(decode(b'[{"a": 1, "b": 2}]', JSON, NAMED), [[1.0, 2.0]])
    check(decode(b'{"inputs": {"a": 1, "b": 2}}', JSON, NAMED), [[1.0, 2.0]])


def test_long_columns_are_transposed() -> None:
    a = list(range(20))
    b = [x * 10 for x in a]
    array = decode(orjson.dumps({"inputs": {"b": b, "a": a}}), JSON, NAMED)
    check(array, np.column_stack([a, b]))


def test_named_inputs_follow_the_signature_order() -> None:
    records = b'[{"c": 3, "a": 1, "b": 2}, {"b": 5, "c": 6, "a": 4}]'
    check(decode(records, JSON, NAMED3), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    columns = b'{"inputs": {"c": [3, 6], "b": [2, 5], "a": [1, 4]}}'
    check(decode(columns, JSON, NAMED3), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def test_without_a_signature_records_keep_the_first_records_key_order() -> None:
    records = b'[{"z": 1, "y": 2}, {"y": 4, "z": 3}]'
    check(decode(records, JSON, None), [[1.0, 2.0], [3.0, 4.0]])
    check(decode(b'{"inputs": {"z": [1, 3], "y": [2, 4]}}', JSON, None), [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize(
    "body",
    [
        b'[{"b": 2, "a": 1}]',
        b'{"instances": [{"a": 1, "b": 2}]}',
        b'{"inputs": [{"a": 1, "b": 2}]}',
        b'{"inputs": {"b": [2], "a": [1]}}',
        b'{"inputs": {"a": 1, "b": 2}}',
    ],
    ids=["records", "instances-records", "inputs-records", "columns", "scalar-columns"],
)
def test_named_inputs_are_refused_for_a_model_whose_features_have_no_names(body: bytes) -> None:
    # Which key is which feature is unknowable: read in the order sent, {"b": 2, "a": 1}
    # predicted on swapped features.
    with pytest.raises(SignatureMismatch, match=r"2 features have no names.*arrays.*CSV"):
        decode(body, JSON, UNNAMED)
    partly = Signature(inputs=(ColumnSpec("float64", "a"), ColumnSpec("float64")))
    with pytest.raises(SignatureMismatch, match="have no names"):
        decode(body, JSON, partly)


def test_a_one_feature_model_without_a_name_takes_one_named_input() -> None:
    unnamed_one = Signature(inputs=(ColumnSpec("float64"),))
    check(decode(b'[{"x": 1}, {"x": 2}]', JSON, unnamed_one), [[1.0], [2.0]])
    check(decode(b'{"inputs": {"x": [1, 2]}}', JSON, unnamed_one), [[1.0], [2.0]])
    with pytest.raises(SignatureMismatch, match=r"expected 1 features, got 2"):
        decode(b'[{"x": 1, "y": 2}]', JSON, unnamed_one)


def test_json_values_null_booleans_and_numeric_strings() -> None:
    array = decode(b'[[null, true, false, "1.5", "NaN", "inf", -0.0]]', JSON, None)
    assert math.isnan(array[0, 0]) and math.isnan(array[0, 4])
    assert array[0, 1:4].tolist() == [1.0, 0.0, 1.5]
    assert array[0, 5] == math.inf


def test_bare_nan_tokens_from_python_json_dumps_are_missing_values() -> None:
    body = json.dumps({"instances": [[float("nan"), 1.0], [float("inf"), 2.0]]}).encode()
    assert b"NaN" in body
    array = decode(body, JSON, UNNAMED)
    assert math.isnan(array[0, 0]) and array[1, 0] == math.inf
    assert array[:, 1].tolist() == [1.0, 2.0]


def test_null_in_records_and_columns_is_nan() -> None:
    array = decode(b'[{"a": null, "b": 2}]', JSON, NAMED)
    assert math.isnan(array[0, 0]) and array[0, 1] == 2.0
    array = decode(b'{"inputs": {"a": [1, null], "b": [null, 4]}}', JSON, NAMED)
    assert math.isnan(array[1, 0]) and math.isnan(array[0, 1])


# --- JSON errors ---------------------------------------------------------------------------


def test_a_string_that_is_not_a_number_names_row_and_column() -> None:
    body = b'[[1, 2], [3, 4], [5, "abc"]]'
    with pytest.raises(InvalidPayload, match=r"row 3, column 2: cannot read 'abc' as a number"):
        decode(body, JSON, None)
    with pytest.raises(InvalidPayload, match=r"row 3, column 2 \(feature 'b'\)"):
        decode(body, JSON, NAMED)


def test_a_bad_value_in_a_record_names_the_feature() -> None:
    body = b'[{"a": 1, "b": 2}, {"b": "oops", "a": 3}]'
    with pytest.raises(InvalidPayload, match=r"row 2, column 2 \(feature 'b'\).*'oops'"):
        decode(body, JSON, NAMED)
    with pytest.raises(InvalidPayload, match=r"row 2, column 2 \(feature 'b'\)"):
        decode(body, JSON, None)


def test_a_bad_value_in_a_column_names_row_and_feature() -> None:
    body = b'{"inputs": {"a": [1, 2, 3], "b": [4, 5, "x"]}}'
    with pytest.raises(InvalidPayload, match=r"row 3, column 2 \(feature 'b'\)"):
        decode(body, JSON, NAMED)


def test_a_long_bad_string_is_truncated() -> None:
    body = orjson.dumps([["y" * 500]])
    with pytest.raises(InvalidPayload) as info:
        decode(body, JSON, None)
    assert "y" * 39 + "…" in str(info.value)
    assert "y" * 41 not in str(info.value)


def test_nested_values_are_refused_with_their_position() -> None:
    with pytest.raises(
        InvalidPayload, match=r"row 1, column 2: expected a number or null, got a list"
    ):
        decode(b"[[1, [2]]]", JSON, None)
    with pytest.raises(InvalidPayload, match=r"row 1, column 2.*got an object"):
        decode(b'[1, {"a": 1}]', JSON, None)


def test_ragged_rows_name_the_row() -> None:
    with pytest.raises(InvalidPayload, match="row 2 has 3 values, row 1 has 2"):
        decode(b"[[1, 2], [3, 4, 5]]", JSON, None)
    with pytest.raises(InvalidPayload, match="row 2: expected a list like row 1, got an object"):
        decode(b'[[1, 2], {"a": 1}]', JSON, None)


def test_columns_of_different_lengths() -> None:
    with pytest.raises(InvalidPayload, match="feature 'b' has 1 values, feature 'a' has 2"):
        decode(b'{"inputs": {"a": [1, 2], "b": [3]}}', JSON, NAMED)


def test_a_record_missing_a_feature_names_row_and_feature() -> None:
    body = b'[{"a": 1, "b": 2}, {"a": 3}]'
    with pytest.raises(SignatureMismatch, match=r"row 2: missing features: \['b'\]"):
        decode(body, JSON, NAMED)


def test_an_unexpected_feature_is_named() -> None:
    body = b'[{"a": 1, "b": 2, "zz": 3}]'
    with pytest.raises(SignatureMismatch, match=r"row 1: unexpected features: \['zz'\]"):
        decode(body, JSON, NAMED)
    with pytest.raises(SignatureMismatch, match=r"missing features: \['b'\].*unexpected.*'zz'"):
        decode(b'{"inputs": {"a": [1], "zz": [2]}}', JSON, NAMED)


def test_without_names_records_must_share_keys() -> None:
    with pytest.raises(InvalidPayload, match=r"row 2: missing features: \['b'\]") as info:
        decode(b'[{"a": 1, "b": 2}, {"a": 3, "c": 4}]', JSON, None)
    assert not isinstance(info.value, SignatureMismatch)
    assert "unexpected features: ['c']" in str(info.value)


def test_width_must_match_the_signature() -> None:
    with pytest.raises(SignatureMismatch, match=r"expected 2 features \['a', 'b'\], got 3"):
        decode(b"[[1, 2, 3]]", JSON, NAMED)
    with pytest.raises(SignatureMismatch, match=r"expected 2 features, got 1"):
        decode(b"[[1], [2]]", JSON, UNNAMED)
    with pytest.raises(SignatureMismatch, match=r"expected 2 features, got 3"):
        decode(b"[[1, 2, 3]]", JSON, UNNAMED)


def test_many_feature_names_are_cut_in_messages() -> None:
    wide = Signature(inputs=tuple(ColumnSpec("float64", f"f{i}") for i in range(50)))
    with pytest.raises(
        SignatureMismatch, match=r"expected 50 features \['f0',.*and 40 more\], got 1"
    ):
        decode(b"[1]", JSON, wide)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"  \n",
        b"[]",
        b'{"instances": []}',
        b'{"inputs": []}',
        b'{"inputs": {}}',
        b'{"inputs": {"a": [], "b": []}}',
    ],
)
def test_zero_rows(body: bytes) -> None:
    with pytest.raises(InvalidPayload, match="no rows in the request"):
        decode(body, JSON, None)


def test_empty_rows_hold_no_values() -> None:
    with pytest.raises(InvalidPayload, match="the rows hold no values"):
        decode(b"[[], []]", JSON, None)


def test_malformed_json_reports_orjsons_position() -> None:
    with pytest.raises(InvalidPayload, match=r"malformed JSON: .*line 1 column \d+"):
        decode(b"[[1, 2],", JSON, None)
    with pytest.raises(InvalidPayload, match="malformed JSON"):
        decode(b"[NaN, oops]", JSON, None)


@pytest.mark.parametrize(
    "body",
    [b'{"rows": [[1]]}', b"3", b'"text"', b"null", b'{"instances": {"a": [1]}}', b'{"inputs": 3}'],
)
def test_other_shapes_list_the_accepted_ones(body: bytes) -> None:
    with pytest.raises(InvalidPayload) as info:
        decode(body, JSON, None)
    message = str(info.value)
    assert "instances" in message and "inputs" in message


def test_instances_and_inputs_together_are_refused() -> None:
    with pytest.raises(InvalidPayload, match="either"):
        decode(b'{"instances": [[1]], "inputs": [[1]]}', JSON, None)


# --- CSV -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"1,2\n3,4", b"1,2\n3,4\n", b"1,2\r\n3,4\r\n", b"1.0, 2\n3 ,4.0\n\n", b"\xef\xbb\xbf1,2\n3,4"],
    ids=["plain", "trailing-newline", "crlf", "spaces", "bom"],
)
@pytest.mark.parametrize("signature", [None, NAMED, UNNAMED], ids=["nosig", "named", "unnamed"])
def test_csv_rows(body: bytes, signature: Signature | None) -> None:
    check(decode(body, CSV, signature), EXPECTED)


def test_csv_numbers_json_cannot_read() -> None:
    check(decode(b"+1,.5,5.,01,1e3,-2E-1", CSV, None), [[1.0, 0.5, 5.0, 1.0, 1000.0, -0.2]])


def test_csv_single_row_and_single_column() -> None:
    check(decode(b"0.25,1e-3,-7", CSV, None), [[0.25, 0.001, -7.0]])
    check(decode(b"1\n2\n3\n", CSV, ONE), [[1.0], [2.0], [3.0]])


@pytest.mark.parametrize(
    "body",
    [b",1,,,2,\n3,,4,,5,", b",1,,,2,\r\n3,,4,,5,\r\n", b" ,1,,nan,2,NaN\n3,,4,,5,"],
    ids=["fast", "crlf", "slow"],
)
def test_csv_empty_fields_and_nan_are_missing(body: bytes) -> None:
    array = decode(body, CSV, None)
    expected = np.array([[np.nan, 1, np.nan, np.nan, 2, np.nan], [3, np.nan, 4, np.nan, 5, np.nan]])
    np.testing.assert_array_equal(array, expected)  # NaN compares equal here


def test_csv_blank_line_in_a_one_column_body_is_skipped_and_quoted_empty_is_missing() -> None:
    check(decode(b"1\n\n3\n", CSV, ONE), [[1.0], [3.0]])
    array = decode(b'1\n""\n3\n', CSV, ONE)  # how csv.writer writes a one-field empty row
    assert array.shape == (3, 1) and math.isnan(array[1, 0])


def test_csv_infinity_is_a_float() -> None:
    assert decode(b"inf,-inf,Infinity", CSV, None).tolist() == [[math.inf, -math.inf, math.inf]]


def test_csv_non_numeric_field_names_line_column_and_text() -> None:
    with pytest.raises(InvalidPayload, match=r"line 3, column 2: cannot read 'abc' as a number"):
        decode(b"1,2\n3,4\n5,abc\n", CSV, None)


def test_csv_header_row_gets_a_hint() -> None:
    with pytest.raises(InvalidPayload, match=r"line 1, column 1: cannot read 'a'.*no header row"):
        decode(b"a,b\n1,2\n", CSV, NAMED)


def test_csv_long_field_is_truncated() -> None:
    with pytest.raises(InvalidPayload) as info:
        decode(b"1," + b"q" * 300, CSV, None)
    assert "line 1, column 2" in str(info.value) and "q" * 41 not in str(info.value)


def test_csv_field_past_the_csv_modules_default_limit_is_read_as_a_number_or_named() -> None:
    """Python's csv module refuses a field over 128 KiB as an error of its own; a numeral that
    long is a number (read or refused) like any other, never malformed CSV."""
    tiny = "+0." + "0" * 200_000 + "1"  # not JSON (the +): the slow path reads it
    check(decode(f"1,{tiny}\n".encode(), CSV, None), [[1.0, 0.0]])
    with pytest.raises(InvalidPayload, match=r"line 1, column 2: '1111.*' is too large"):
        decode(b"1," + b"1" * 200_000, CSV, None)


def test_csv_ragged_lines_name_the_line() -> None:
    with pytest.raises(InvalidPayload, match="line 2 has 3 fields, line 1 has 2"):
        decode(b"1,2\n3,4,5\n", CSV, None)
    with pytest.raises(InvalidPayload, match="line 4 has 1 fields, line 2 has 2"):
        decode(b"\n1,2\n3,4\n5\n", CSV, None)


def test_csv_width_must_match_the_signature() -> None:
    with pytest.raises(SignatureMismatch, match=r"expected 3 features \['a', 'b', 'c'\], got 2"):
        decode(b"1,2\n3,4\n", CSV, NAMED3)


@pytest.mark.parametrize("body", [b"", b"\n", b"\r\n\r\n", b"\xef\xbb\xbf"])
def test_csv_zero_rows(body: bytes) -> None:
    with pytest.raises(InvalidPayload, match="no rows in the request"):
        decode(body, CSV, None)


def test_csv_not_utf8() -> None:
    with pytest.raises(InvalidPayload, match="not UTF-8"):
        decode(b"1,\xff\n", CSV, None)


@pytest.mark.parametrize("signature", [None, TEXT], ids=["numbers", "text"])
def test_a_json_body_that_is_not_utf8_names_the_byte_where_it_stops_being_utf8(
    signature: Signature | None,
) -> None:
    """Latin-1 text sent unlabelled (a Java or R client): orjson's words were "surrogates not
    allowed: line 1 column 1 (char 0)", a cause and a place the body does not have."""
    body = '[[1, 2], [3, "caf\u00e9"]]'.encode("latin-1")
    with pytest.raises(InvalidPayload) as refused:
        decode(body, JSON, signature)
    message = str(refused.value)
    assert "the JSON body is not UTF-8 text" in message, message
    assert "byte 0xe9 in position 17" in message, message
    assert "surrogates" not in message and "char 0" not in message, message


# --- content types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (None, b"[[1, 2], [3, 4]]"),
        ("", b"[[1, 2], [3, 4]]"),
        ("application/json; charset=utf-8", b"[[1, 2], [3, 4]]"),
        ("Application/JSON", b"[[1, 2], [3, 4]]"),
        ("text/csv; charset=utf-8", b"1,2\n3,4\n"),
        (" TEXT/CSV ;header=absent", b"1,2\n3,4\n"),
    ],
)
def test_content_type_is_case_insensitive_and_ignores_parameters(
    content_type: str | None, body: bytes
) -> None:
    check(decode(body, content_type, NAMED), EXPECTED)


def test_unsupported_content_type_names_it_and_the_supported_ones() -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        decode(b"x", "application/x-parquet", None)
    message = str(info.value)
    assert "application/x-parquet" in message
    assert all(t in message for t in SUPPORTED_CONTENT_TYPES)
    assert info.value.http_status == 415


@pytest.mark.parametrize("charset", ["utf-16", "UTF-16LE", '"latin-1"', "ISO-8859-1", "cp1252"])
def test_a_body_is_read_in_the_charset_its_content_type_names(charset: str) -> None:
    # A UTF-16 body was read as UTF-8 and refused as malformed (400); a Java or R client may
    # label even an ASCII body ISO-8859-1.
    codec = charset.strip('"')
    for media, text in (("text/csv", "1,2\n3,4\n"), ("application/json", "[[1, 2], [3, 4]]")):
        check(decode(text.encode(codec), f"{media}; charset={charset}", NAMED), EXPECTED)
    for same in ("utf-8", "UTF8", '"utf-8"', "us-ascii"):
        check(decode(b"1,2\n3,4\n", f"text/csv; charset={same}", NAMED), EXPECTED)


def test_a_charset_python_cannot_read_or_a_body_not_in_it_is_refused_naming_it() -> None:
    for charset in ("no-such-charset", "base64"):  # base64 is a codec of bytes, not text
        with pytest.raises(UnsupportedMediaType) as unknown:
            decode(b"1,2\n", f"text/csv; charset={charset}", None)
        assert charset in str(unknown.value) and unknown.value.http_status == 415
    with pytest.raises(InvalidPayload, match="not valid 'utf-16'") as invalid:
        decode(b"1,2\n3", "text/csv; charset=utf-16", None)  # an odd number of bytes
    assert invalid.value.http_status == 400


def test_form_encoded_gets_a_curl_hint() -> None:
    with pytest.raises(UnsupportedMediaType, match="curl"):
        decode(b"[1]", "application/x-www-form-urlencoded", None)


def test_supported_content_types() -> None:
    assert SUPPORTED_CONTENT_TYPES == ("application/json", "text/csv", "application/x-npy")


# --- negotiate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("  ", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("application/json; charset=utf-8", JSON),
        ("text/csv", CSV),
        ("TEXT/CSV", CSV),
        ("text/*", CSV),
        ("text/csv;q=0.5, application/json;q=0.9", JSON),
        ("application/json;q=0.4, text/csv;q=0.8", CSV),
        ("text/csv, application/json", CSV),
        ("application/json, text/csv", JSON),
        ("text/html, */*;q=0.1", JSON),
        ("text/html, text/*;q=0.3, */*;q=0.1", CSV),
        ("text/csv;q=0, */*", JSON),
        ("application/json;q=0, */*", CSV),
        ("image/png, text/csv;q=0.2", CSV),
        ("application/json;q=oops", JSON),
        ("text/csv;level=1;q=0.7, application/json;q=0.6", CSV),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize(
    "accept", ["image/png", "text/html, application/xml", "application/json;q=0, text/*;q=0"]
)
def test_negotiate_refuses_what_it_cannot_write(accept: str) -> None:
    with pytest.raises(NotAcceptable) as info:
        negotiate(accept)
    assert accept in str(info.value)
    assert "application/json" in str(info.value) and "text/csv" in str(info.value)
    assert info.value.http_status == 406


# --- encode --------------------------------------------------------------------------------


def test_encode_json_1d_and_2d_round_trip() -> None:
    one_d = np.array([0.1, 2.5, -3.0])
    assert orjson.loads(encode(one_d, JSON)) == {"predictions": [0.1, 2.5, -3.0]}
    two_d = np.array([[0.2, 0.8], [0.9, 0.1]])
    assert orjson.loads(encode(two_d, JSON)) == {"predictions": [[0.2, 0.8], [0.9, 0.1]]}
    ints = np.array([1, 0, 2], dtype=np.int64)
    assert encode(ints, JSON) == b'{"predictions":[1,0,2]}'


def test_encode_json_nan_and_inf_are_null() -> None:
    assert encode(np.array([1.0, np.nan, np.inf]), JSON) == b'{"predictions":[1.0,null,null]}'
    assert encode(np.array([np.nan], dtype=np.float32), JSON) == b'{"predictions":[null]}'


def test_encode_json_other_dtypes() -> None:
    assert orjson.loads(encode(np.array(["setosa", "virginica"]), JSON)) == {
        "predictions": ["setosa", "virginica"]
    }
    halves = np.array([0.5, np.nan], dtype=np.float16)
    assert orjson.loads(encode(halves, JSON)) == {"predictions": [0.5, None]}
    assert orjson.loads(encode(np.array([[1, 2], [3, 4]])[:, 0], JSON)) == {"predictions": [1, 3]}
    assert orjson.loads(encode(np.float64(0.25), JSON)) == {"predictions": [0.25]}


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_encode_json_writes_a_value_alike_for_one_row_and_many(dtype: type) -> None:
    """A model's column of a 2-D result (the compiled trees' probability of class 1) is not
    C-ordered from two rows on; one row is. Both must print the same text: the shortest that
    reads back exactly as the value the model gave, in its own dtype."""
    values = np.array([0.83744717, 1e-7, 3.0e4, -2.5e-5, 1 / 3], dtype=dtype)
    two_d = np.stack([1 - values, values], axis=1)
    column = two_d[:, 1]
    assert not column.flags.c_contiguous
    texts = {
        "single": [encode(column[i : i + 1], JSON) for i in range(len(values))],
        "strided": [encode(np.repeat(column[i : i + 1], 2), JSON) for i in range(len(values))],
        "column": encode(column, JSON),
        "contiguous": encode(np.ascontiguousarray(column), JSON),
    }
    numbers = [t[len(b'{"predictions":[') : -2] for t in texts["single"]]
    assert (
        texts["column"] == texts["contiguous"] == b'{"predictions":[' + b",".join(numbers) + b"]}"
    )
    for number, text in zip(numbers, texts["strided"], strict=True):
        assert text == b'{"predictions":[' + number + b"," + number + b"]}"
    back = np.array(json.loads(texts["column"])["predictions"], dtype=dtype)
    np.testing.assert_array_equal(back, values)  # exactly, in the model's dtype
    if dtype is np.float32:
        assert numbers[0] == b"0.83744717"  # float32's shortest, not the float64 it holds
    if dtype is np.float16:
        assert numbers[0] == b"0.8374"  # float16's shortest, as CSV writes it
        assert encode(np.array([0.1], dtype), JSON) == b'{"predictions":[0.1]}'
        assert encode(np.array([0.1], dtype), CSV) == b"0.1\n"


def test_encode_csv_1d_and_2d_round_trip() -> None:
    one_d = np.array([0.1, 1 / 3, 1e-300, -2.0])
    body = encode(one_d, CSV)
    assert body == b"0.1\n0.3333333333333333\n1e-300\n-2.0\n"
    np.testing.assert_array_equal(decode(body, CSV, None)[:, 0], one_d)
    two_d = np.random.default_rng(1).random((4, 3))
    body = encode(two_d, CSV)
    assert body.count(b"\n") == 4 and body.endswith(b"\n")
    np.testing.assert_array_equal(decode(body, CSV, None), two_d)


def test_encode_csv_float32_uses_its_shortest_repr() -> None:
    values = np.array([0.1, 1 / 3], dtype=np.float32)
    body = encode(values, CSV)
    assert body == b"0.1\n0.33333334\n"
    assert np.array(body.split(), dtype=np.float32).tolist() == values.tolist()


def test_encode_csv_nan_and_labels() -> None:
    body = encode(np.array([1.0, np.nan]), CSV)
    assert body == b"1.0\nnan\n"
    assert math.isnan(decode(body, CSV, None)[1, 0])
    assert encode(np.array(["a,b", "c"]), CSV) == b'"a,b"\nc\n'
    assert encode(np.array([3, 4]), CSV) == b"3\n4\n"
    assert encode(np.array([], dtype=np.float64), CSV) == b""


@pytest.mark.parametrize("media_type", [JSON, CSV])
def test_text_labels_held_as_bytes_or_numpy_scalars_in_objects_are_written_as_values(
    media_type: str,
) -> None:
    # A classifier trained on bytes labels predicts a dtype S array; a pyfunc model returning
    # a list of numpy numbers and text, an object array. Both formats write the values
    # themselves: not Python's repr (b'cat') in CSV, nor a 424 in JSON.
    labels = np.array([b"cat", b"dog"])
    mixed = np.array([np.int64(3), np.float32(0.5), "a", np.bool_(True)], dtype=object)
    if media_type == JSON:
        assert orjson.loads(encode(labels, JSON)) == {"predictions": ["cat", "dog"]}
        assert orjson.loads(encode(mixed, JSON)) == {"predictions": [3, 0.5, "a", True]}
    else:
        assert encode(labels, CSV) == b"cat\ndog\n"
        assert encode(mixed, CSV) == b"3\n0.5\na\nTrue\n"


@pytest.mark.parametrize("media_type", [JSON, CSV])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_a_narrow_float_among_objects_is_written_as_its_array_would_be(
    media_type: str, dtype: type[np.floating[Any]]
) -> None:
    # float16(0.1) is 0.0999755859375 as a float64: an array of them is written 0.1, and so is
    # one held among objects (a pyfunc's list of numpy numbers), in JSON and in CSV alike.
    values = [dtype(0.1), dtype(-2.5e-7), dtype(np.nan), dtype(np.inf)]
    as_array = encode(np.array(values, dtype=dtype), media_type)
    as_objects = encode(np.array(values, dtype=object), media_type)
    if media_type == JSON:
        assert orjson.loads(as_objects) == orjson.loads(as_array)
        assert orjson.loads(as_objects)["predictions"][0] == 0.1
    else:
        assert as_objects.split(b"\n")[:2] == as_array.split(b"\n")[:2]
        assert as_objects.startswith(b"0.1\n")


@pytest.mark.parametrize("media_type", [JSON, CSV])
@pytest.mark.parametrize(
    ("predictions", "named"),
    [
        (np.array([1 + 2j]), "complex"),
        (np.array([b"\xff"]), "not UTF-8"),
        (np.array([object()], dtype=object), "object"),
    ],
)
def test_predictions_no_format_can_hold_are_a_model_failure_in_both_formats(
    media_type: str, predictions: np.ndarray, named: str
) -> None:
    with pytest.raises(ModelFailed, match=named):
        encode(predictions, media_type)


def test_csv_refuses_a_prediction_that_is_a_mapping_or_list_naming_json() -> None:
    # JSON writes {"a": 1} as an object; a CSV cell would hold Python's repr of it.
    with pytest.raises(ModelFailed, match=r"dict.*as CSV.*application/json"):
        encode(np.array([{"a": 1}], dtype=object), CSV)


def test_json_writes_per_row_dicts_keyed_by_class_labels_as_python_json_does() -> None:
    # A pyfunc answering {label: probability} per row, its labels ints: JSON object keys are
    # text, so the labels are written as text ("0"), as json.dumps writes them, not a 424.
    rows = np.array([{0: 0.3, 1: 0.7}, {0: 0.9, 1: np.float64(0.1)}], dtype=object)
    assert orjson.loads(encode(rows, JSON)) == {
        "predictions": [{"0": 0.3, "1": 0.7}, {"0": 0.9, "1": 0.1}]
    }
    written = json.loads(encode(rows, JSON))["predictions"]
    assert written == json.loads(json.dumps(rows.tolist(), default=float))


def test_json_writes_per_row_dicts_keyed_by_numpy_labels() -> None:
    # dict(zip(model.classes_, probabilities)): the keys are NumPy scalars, which orjson's
    # non-string-key option refused ("Dict key must a type serializable..."), a 424.
    rows = np.array(
        [{np.int64(0): np.float64(0.25), np.int64(1): 0.75}, {np.str_("cat"): 1.0}],
        dtype=object,
    )
    assert orjson.loads(encode(rows, JSON)) == {
        "predictions": [{"0": 0.25, "1": 0.75}, {"cat": 1.0}]
    }
    # Keys are written as values are: a float32 in its shortest text, a bytes label as text.
    odd = np.array([{np.float32(0.1): 1.0, b"dog": 2.0}], dtype=object)
    assert orjson.loads(encode(odd, JSON)) == {"predictions": [{"0.1": 1.0, "dog": 2.0}]}


def test_csv_names_json_only_for_a_mapping_json_can_write() -> None:
    # Keys JSON cannot write (a tuple): asking for application/json would fail as well.
    unwritable = np.array([{(0, 1): 0.3}], dtype=object)
    with pytest.raises(ModelFailed, match=r"cannot write predictions"):
        encode(unwritable, JSON)
    with pytest.raises(ModelFailed, match=r"dict as CSV") as refused:
        encode(unwritable, CSV)
    assert "application/json" not in str(refused.value)
    with pytest.raises(ModelFailed, match=r"dict.*as CSV.*application/json"):
        encode(np.array([{0: 0.3, 1: 0.7}], dtype=object), CSV)


def test_encode_refuses_an_unknown_media_type() -> None:
    with pytest.raises(NotAcceptable):
        encode(np.array([1.0]), "application/xml")


def test_end_to_end_csv_in_json_out() -> None:
    rows = decode(b"1,2\n3,4\n", CSV, NAMED)
    body = encode(rows.sum(axis=1), negotiate("application/json"))
    assert orjson.loads(body) == {"predictions": [3.0, 7.0]}


@pytest.mark.parametrize("name", ["température", "q1_1", "a\\u00e9"])
def test_feature_names_that_need_the_exact_pass_do_not_hide_a_bad_value(name: str) -> None:
    """Names with non-ASCII characters, escapes or digit-underscore-digit are read as fast as
    others when every value is a number, and a value float() takes but the grammar does not
    is still refused beside them."""
    good = f'[{{"{name}": 1.5, "b": 2}}]'.encode()
    np.testing.assert_array_equal(decode(good, JSON, None), [[1.5, 2.0]])
    for bad in ('"1_0"', '"\\u0661"', '"1\\u00a0"'):
        body = f'[{{"{name}": {bad}, "b": 2}}]'.encode()
        with pytest.raises(InvalidPayload):
            decode(body, JSON, None)
