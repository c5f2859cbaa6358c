"""Property-based tests of the payload codecs (issue 14's fuzzing layer).

- Any body, any content type: a 2-D float64 array or one of our typed errors, never another
  exception (the request path answers typed errors as 4xx; anything else would be a 500).
- Round trips: rows written as CSV (as SageMaker's clients write them) and as JSON read back
  to the same numbers, NaN included; predictions encoded as JSON or CSV read back exactly.
- Formats agree: the same numerals sent as CSV fields and as JSON strings are accepted or
  refused alike, with the same values.
- Compressed bodies: what gzip or deflate compressed inflates back whole; past the limit it is
  a 413, and garbage is a 400, never anything else.
"""

from __future__ import annotations

import gzip
import math
import zlib

import numpy as np
import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from modelyard.codecs import content_encoding, payloads
from modelyard.domain import Signature
from modelyard.errors import (
    InvalidPayload,
    ModelyardError,
    PayloadTooLarge,
    SignatureMismatch,
    UnsupportedMediaType,
)

CSV, JSON = "text/csv", "application/json"
TYPED = (InvalidPayload, SignatureMismatch, UnsupportedMediaType)

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
matrices = st.integers(1, 5).flatmap(
    lambda width: st.lists(st.lists(floats, min_size=width, max_size=width), min_size=1, max_size=8)
)
content_types = st.sampled_from(
    [CSV, JSON, None, "", "text/csv; charset=utf-8", "APPLICATION/JSON", "text/plain", "x/y;"]
)
# Numerals as people and programs write them, the well-formed and the hostile.
numerals = st.one_of(
    finite.map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(
        ["1e400", "-1e400", "1e-400", "inf", "-inf", "Infinity", "nan", "NaN", "0x10", "1_0",
         "+1", ".5", "5.", "1e", "--1", " 1 ", "", "\uff11", "1,5"]
    ),
)  # fmt: skip


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode), content_types)
@example(b"\xef\xbb\xbf[[1,2]]", JSON)
@example(b'"1",2\n\n3,4', CSV)
@example(b"1e400,1", CSV)
@example(b"1\r,2\n3,4", CSV)  # found in review: the fast path read a lone \r as a space
def test_any_body_decodes_or_is_refused_with_a_typed_error(
    body: bytes, content_type: str | None
) -> None:
    try:
        array = payloads.decode(body, content_type, None)
    except TYPED:
        return
    assert array.dtype == np.float64 and array.ndim == 2
    assert array.shape[0] >= 1 and array.shape[1] >= 1
    assert array.flags["C_CONTIGUOUS"]


@given(matrices)
def test_rows_written_as_csv_or_json_read_back_the_same(rows: list[list[float]]) -> None:
    expected = np.array(rows, dtype=np.float64)
    csv_body = "\n".join(",".join(repr(x) for x in row) for row in rows).encode()
    json_body = orjson.dumps([[None if math.isnan(x) else x for x in row] for row in rows])
    bom = b"\xef\xbb\xbf"
    for body in (csv_body, bom + csv_body, csv_body + b"\r\n\n", b"\n" + csv_body):
        assert same(payloads.decode(body, CSV, None), expected), body
    if all(math.isfinite(x) or math.isnan(x) for row in rows for x in row):
        # orjson writes ±inf as null: only bodies without infinities are JSON round trips.
        for body in (json_body, bom + json_body):
            assert same(payloads.decode(body, JSON, None), expected), body


@given(st.lists(numerals, min_size=1, max_size=4), st.booleans())
@example(["1e400"], False)
@example(["nan", "inf"], True)
def test_numerals_mean_the_same_in_csv_and_json(fields: list[str], quoted: bool) -> None:
    """One row of numerals: as CSV fields (quoted or not) and as a JSON row of strings."""

    def outcome(body: bytes, media: str) -> np.ndarray | type[Exception]:
        try:
            return payloads.decode(body, media, None)
        except TYPED as exc:
            return type(exc)

    cells = [f'"{f}"' if quoted else f for f in fields]
    if not quoted and any(("," in f or '"' in f or "\n" in f) for f in fields):
        return  # not one row of those fields when unquoted
    csv_result = outcome(",".join(cells).encode(), CSV)
    json_result = outcome(orjson.dumps(fields), JSON)
    empty = [f.strip() == "" for f in fields]
    if any(empty):
        # An empty CSV field is a missing value; JSON has null for that, and "" is refused.
        return
    if isinstance(csv_result, np.ndarray) and isinstance(json_result, np.ndarray):
        assert same(csv_result, json_result), (fields, csv_result, json_result)
    else:
        assert csv_result == json_result, (fields, csv_result, json_result)


@given(matrices, st.sampled_from(["width", "names"]))
def test_a_signature_mismatch_is_typed(rows: list[list[float]], kind: str) -> None:
    width = len(rows[0])
    names = [f"f{i}" for i in range(width + 1)]
    signature = Signature.from_dict(
        {"inputs": [{"name": n, "dtype": "float64"} for n in names], "outputs": []}
    )
    body = orjson.dumps(
        [[None if math.isnan(x) else x for x in row] for row in rows]
        if kind == "width"
        else [dict(zip(names[:-1], [0.0] * width, strict=True))]
    )
    with pytest.raises(SignatureMismatch):
        payloads.decode(body, JSON, signature)


@given(st.lists(floats, min_size=1, max_size=20))
def test_predictions_encode_and_read_back_exactly(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    as_json = orjson.loads(payloads.encode(array, JSON))["predictions"]
    assert as_json == [x if math.isfinite(x) else None for x in values]
    lines = payloads.encode(array, CSV).decode().splitlines()
    assert same(np.array([float(x) for x in lines]), array)


@given(st.binary(max_size=3_000), st.sampled_from(["gzip", "deflate"]), st.integers(1, 4_000))
def test_compressed_bodies_inflate_whole_or_are_refused(
    body: bytes, coding: str, limit: int
) -> None:
    packed = gzip.compress(body) if coding == "gzip" else zlib.compress(body)
    codings = content_encoding.codings(coding)
    if len(body) > limit:
        with pytest.raises(PayloadTooLarge):
            content_encoding.inflate(packed, codings, limit)
    else:
        assert content_encoding.inflate(packed, codings, limit) == body


@given(st.binary(max_size=300), st.sampled_from(["gzip", "deflate", "x-gzip", "gzip, deflate"]))
def test_garbage_said_to_be_compressed_is_a_typed_error(body: bytes, header: str) -> None:
    try:
        content_encoding.inflate(body, content_encoding.codings(header), 1_000)
    except (InvalidPayload, PayloadTooLarge):
        return


@given(st.text(max_size=60))
@example("br")
@example("gzip, br")
def test_any_content_encoding_header_is_known_or_a_415(header: str) -> None:
    try:
        found = content_encoding.codings(header)
    except UnsupportedMediaType as exc:
        assert isinstance(exc, ModelyardError) and exc.http_status == 415
        return
    assert set(found) <= {"gzip", "x-gzip", "deflate"}


@pytest.mark.parametrize("body", [b"1\r,2\n3,4", b"1,2\r3,4", b"1,2\r\n3,4\r\n", b"1,\r2\n"])
def test_the_fast_and_the_quoted_csv_paths_agree(body: bytes) -> None:
    """Found in review: a lone \\r was a space to the fast path and a line end to the other."""
    quoted = body.replace(b"1", b'"1"', 1)  # a quote sends the same rows down the slow path

    def outcome(data: bytes) -> object:
        try:
            return payloads.decode(data, CSV, None).tolist()
        except InvalidPayload:
            return InvalidPayload

    assert outcome(body) == outcome(quoted)
