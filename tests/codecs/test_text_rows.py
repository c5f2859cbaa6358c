"""Request bodies for a model that takes text: every JSON shape and CSV read into a table with
the signature's columns (text as strings, the rest float64), and the refusals naming the row
and feature."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.codecs.payloads import decode
from modelyard.codecs.text_rows import is_text_dtype, text_features
from modelyard.domain.signature import ColumnSpec, Signature
from modelyard.errors import InvalidPayload, SignatureMismatch, UnsupportedMediaType

JSON = "application/json"
CSV = "text/csv"
MIXED = Signature(
    inputs=(ColumnSpec("float64", "age"), ColumnSpec("str", "plan"), ColumnSpec("object", "zip"))
)
TWO_ROWS = [[30.0, "gold", "02139"], [41.5, "basic", "94105"]]


def table(body: bytes, content_type: str = JSON, signature: Signature = MIXED) -> pd.DataFrame:
    rows = decode(body, content_type, signature)
    assert isinstance(rows, pd.DataFrame), type(rows)
    return rows


def values(frame: pd.DataFrame) -> list[list[Any]]:
    return [
        [None if isinstance(v, float) and math.isnan(v) else v for v in row]
        for row in frame.itertuples(index=False)
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'[[30, "gold", "02139"], [41.5, "basic", "94105"]]',
        b'[{"plan": "gold", "zip": "02139", "age": 30}, {"zip": "94105", "age": 41.5,'
        b' "plan": "basic"}]',
        b'{"instances": [[30, "gold", "02139"], [41.5, "basic", "94105"]]}',
        b'{"inputs": {"zip": ["02139", "94105"], "plan": ["gold", "basic"], "age": [30, 41.5]}}',
        b'{"inputs": [{"age": "30", "plan": "gold", "zip": "02139"},'
        b' {"age": "4.15e1", "plan": "basic", "zip": "94105"}]}',
    ],
    ids=["rows", "records", "instances", "columns", "inputs-records-numbers-as-text"],
)
def test_every_json_shape_gives_the_signatures_columns_in_order(body: bytes) -> None:
    frame = table(body)
    assert list(frame.columns) == ["age", "plan", "zip"]
    assert frame["age"].dtype == np.float64 and pd.api.types.is_string_dtype(frame["plan"])
    assert values(frame) == TWO_ROWS


def test_one_row_a_json_integer_for_text_and_missing_values() -> None:
    assert values(table(b'[30, "gold", 2139]')) == [[30.0, "gold", "2139"]]
    assert values(table(b'[[null, null, "02139"]]')) == [[None, None, "02139"]]


@pytest.mark.parametrize(
    ("alone", "beside"),
    [
        (b'[[1, null, "z"]]', b'[[1, null, "z"], [2, "gold", "y"]]'),
        (b"1,,z\n", b"1,,z\n2,gold,y\n"),
    ],
)
def test_a_missing_text_value_is_nan_whatever_else_the_request_holds(
    alone: bytes, beside: bytes
) -> None:
    """A model tells None from NaN (scikit-learn: two categories): alone, a null stayed None,
    beside text it became NaN, so one row's answer hung on its request's other rows."""
    media = CSV if b"[" not in alone else JSON
    first = table(alone, media)["plan"].iloc[0]
    second = table(beside, media)["plan"].iloc[0]
    assert isinstance(first, float) and math.isnan(first)
    assert isinstance(second, float) and math.isnan(second)


def test_csv_rows_keep_text_as_sent_even_when_it_reads_as_a_number() -> None:
    body = b'\xef\xbb\xbf30,gold,02139\r\n\r\n41.5,"basic, annual",94105\n'
    frame = table(body, CSV)
    assert values(frame) == [[30.0, "gold", "02139"], [41.5, "basic, annual", "94105"]]
    assert values(table(b"1,2,3\n,,\n", CSV)) == [[1.0, "2", "3"], [None, None, None]]


def test_a_csv_text_field_longer_than_the_csv_modules_default_limit_is_read_whole() -> None:
    """A document for a text model may run past 128 KiB, Python's csv module's default field
    limit; under the payload limit it is valid CSV, read as the same text in JSON is, not
    refused as malformed CSV."""
    review = "a wonderful, moving film. " * 8_000  # 200,000 characters
    quoted = review.replace('"', '""')
    body = f'30,"{quoted}",02139\n41.5,{"x" * 140_000},94105\n'.encode()
    assert values(table(body, CSV)) == [[30.0, review, "02139"], [41.5, "x" * 140_000, "94105"]]


@pytest.mark.parametrize(
    ("body", "content_type", "error", "words"),
    [
        (
            b'[[30, 1.5, "02139"]]',
            JSON,
            InvalidPayload,
            ["row 1, column 2 (feature 'plan')", "1.5"],
        ),
        (b'[[30, true, "02139"]]', JSON, InvalidPayload, ["feature 'plan'", "expected text"]),
        (b'[["old", "gold", "x"]]', JSON, InvalidPayload, ["feature 'age'", "'old' as a number"]),
        (b'[{"age": 1, "plan": "gold"}]', JSON, SignatureMismatch, ["missing", "'zip'"]),
        (b'[{"age": 1, "plan": "g", "zip": "z", "x": 2}]', JSON, SignatureMismatch, ["'x'"]),
        (b'{"inputs": {"age": [1], "plan": ["g"]}}', JSON, SignatureMismatch, ["'zip'"]),
        (b'[[1, "gold"]]', JSON, SignatureMismatch, ["expected 3 features", "got 2"]),
        (b'[[1, "a", "b"], [2, "c"]]', JSON, InvalidPayload, ["row 2 has 2 values"]),
        (b"[]", JSON, InvalidPayload, ["no rows"]),
        (b'{"rows": []}', JSON, InvalidPayload, ["unrecognised JSON object", "'rows'"]),
        (b"old,gold,02139\n", CSV, InvalidPayload, ["line 1, column 1", "no header row"]),
        (b"1,gold,02139\n2,basic\n", CSV, InvalidPayload, ["line 2 has 2 fields"]),
        (b'1,"gold,02139\n', CSV, InvalidPayload, ["malformed CSV"]),
        (b"1,gold\n", CSV, SignatureMismatch, ["expected 3 features", "got 2"]),
        (b"\n \n", CSV, InvalidPayload, ["no rows"]),
        (b"\x93NUMPY", "application/x-npy", UnsupportedMediaType, ["takes text", "'plan'"]),
    ],
)
def test_bad_bodies_are_refused_naming_the_row_and_feature(
    body: bytes, content_type: str, error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as refused:
        decode(body, content_type, MIXED)
    for word in words:
        assert word in str(refused.value), str(refused.value)


def test_a_model_of_numbers_only_still_gets_an_array() -> None:
    numbers = Signature(inputs=(ColumnSpec("float64", "a"), ColumnSpec("int64", "b")))
    rows = decode(b"[[1, 2]]", JSON, numbers)
    assert isinstance(rows, np.ndarray) and rows.tolist() == [[1.0, 2.0]]
    assert text_features(numbers) is None and text_features(None) is None
    assert text_features(MIXED) == (False, True, True)


@pytest.mark.parametrize(
    ("dtype", "text"),
    [
        ("str", True),
        ("object", True),
        ("string", True),
        ("string[pyarrow]", True),
        ("<U12", True),
        ("S4", True),
        ("float64", False),
        ("int32", False),
        ("bool", False),
        ("category", False),
        ("Int64", False),
    ],
)
def test_which_dtypes_hold_text(dtype: str, text: bool) -> None:
    assert is_text_dtype(dtype) is text
