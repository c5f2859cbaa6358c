"""``application/x-npy`` bodies (what the SageMaker SDK's NumpySerializer sends): read exactly,
in any numeric dtype and memory order; never unpickled; a header that lies about its size is
refused before anything is allocated."""

from __future__ import annotations

import io

import numpy as np
import pytest

from modelyard.codecs import npy
from modelyard.codecs.payloads import decode, encode, negotiate
from modelyard.domain import ColumnSpec, Signature
from modelyard.errors import InvalidPayload, NotAcceptable, SignatureMismatch

NPY = "application/x-npy"


def body(array: np.ndarray, **kw: bool) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kw)
    return buffer.getvalue()


def header(descr: str, shape: tuple[int, ...]) -> bytes:
    """A hand-written version 1.0 header (what a hostile client could send)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def signature(width: int) -> Signature:
    return Signature(inputs=tuple(ColumnSpec(f"f{i}", "double") for i in range(width)))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float64).reshape(4, 3) / 7,
        np.arange(12, dtype=np.float32).reshape(4, 3) / 7,
        np.arange(12, dtype=np.int64).reshape(4, 3),
        np.arange(12, dtype=np.uint8).reshape(4, 3),
        np.asfortranarray(np.arange(12, dtype=np.float64).reshape(4, 3)),
        np.arange(12, dtype=">f8").reshape(4, 3),
        np.array([[True, False, True]] * 4),
        np.array([[np.nan, np.inf, -1e308]] * 4),
    ],
    ids=["float64", "float32", "int64", "uint8", "fortran", "big-endian", "bool", "nan-inf"],
)
def test_numeric_arrays_are_read_exactly(array: np.ndarray) -> None:
    rows = decode(body(array), NPY, signature(3))
    assert rows.dtype == np.float64 and rows.flags.c_contiguous
    np.testing.assert_array_equal(rows, array.astype(np.float64))


def test_a_1d_array_is_one_row_or_for_one_feature_one_column() -> None:
    assert decode(body(np.array([1.0, 2.0, 3.0])), NPY, signature(3)).shape == (1, 3)
    assert decode(body(np.array([1.0, 2.0, 3.0])), NPY, signature(1)).shape == (3, 1)
    assert decode(body(np.array([1.0, 2.0, 3.0])), "Application/X-NPY; x=1", None).shape == (1, 3)


def test_the_signature_width_is_checked() -> None:
    with pytest.raises(SignatureMismatch, match="expected 3 features"):
        decode(body(np.zeros((2, 4))), NPY, signature(3))


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (body(np.array([[{"a": 1}]], dtype=object), allow_pickle=True), "numbers"),
        (body(np.array([["a", "b"]])), "numbers"),
        (body(np.zeros((2, 2), dtype=np.complex128)), "numbers"),
        (body(np.zeros((2, 2, 2))), "3-D"),
        (body(np.zeros((0, 3))), "no rows"),
        (body(np.zeros((4, 3)))[:-8], "bytes follow"),
        (body(np.zeros((4, 3))) + b"\0" * 8, "bytes follow"),
        (b"[[1, 2, 3]]", "malformed .npy"),
        (b"", "malformed .npy"),
    ],
    ids=["pickle", "strings", "complex", "3d", "no-rows", "short", "long", "json", "empty"],
)
def test_bodies_that_are_not_plain_numbers_are_refused(payload: bytes, words: str) -> None:
    with pytest.raises(InvalidPayload, match=words):
        decode(payload, NPY, None)


def test_a_header_claiming_a_huge_array_is_refused_without_allocating_it() -> None:
    # 10^13 float64 values would be 80 TB: np.load would try to allocate them.
    lying = header("<f8", (10**13, 1)) + b"\0" * 64
    with pytest.raises(InvalidPayload, match="bytes follow"):
        decode(lying, NPY, None)


def raw_header(text: str) -> bytes:
    """A version 1.0 body whose header is ``text`` as given, padded as numpy pads it."""
    data = text.encode("latin-1")
    data += b" " * (63 - (10 + len(data)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(data).to_bytes(2, "little") + data + b"\0" * 24


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (f(1),), }", "no calls"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1 + 2,), }", "no calls"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3", "no calls"),
        ("{[1]: 2}", "dict literal"),
        ("{1: " + "[" * 3000 + "]" * 3000 + "}", "dict literal"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, -3), }", "negative size"),
    ],
    ids=["call", "arithmetic", "unclosed", "unhashable-key", "deep", "negative"],
)
def test_a_malformed_header_is_named_plainly(text: str, words: str) -> None:
    with pytest.raises(InvalidPayload, match=words) as info:
        decode(raw_header(text), NPY, None)
    message = str(info.value)
    assert message.startswith("malformed .npy body: ")
    assert "<ast." not in message and " object at 0x" not in message, message


def test_predictions_are_written_as_npy_when_asked_by_name() -> None:
    assert negotiate(NPY) == NPY
    assert negotiate("application/*") == "application/json"
    assert negotiate("*/*") == "application/json"
    assert negotiate("text/csv;q=0.5, application/x-npy") == NPY
    predictions = np.array([0.25, 0.5, 1e-300], dtype=np.float32)
    back = np.load(io.BytesIO(encode(predictions, NPY)), allow_pickle=False)
    np.testing.assert_array_equal(back, predictions)
    assert back.dtype == np.float32


def test_text_labels_held_as_python_objects_are_written_as_a_text_array() -> None:
    # A scikit-learn classifier fitted on a pandas column of strings answers with an object
    # array: its labels are text, which .npy holds without pickle.
    labels = np.array([["yes", "no"], ["no", "yes"]], dtype=object)
    back = np.load(io.BytesIO(encode(labels, NPY)), allow_pickle=False)
    assert back.dtype.kind == "U"
    assert back.tolist() == labels.tolist()


def test_predictions_of_other_python_objects_are_not_acceptable_as_npy() -> None:
    # Not the model's failure (JSON writes them): the caller asked for a type that cannot hold
    # them, a 406 naming the types that can, not a 424 ModelError.
    with pytest.raises(NotAcceptable, match="application/json") as info:
        npy.encode(np.array(["cat", {"x": 1}], dtype=object))
    assert info.value.http_status == 406


@pytest.mark.parametrize(
    ("held", "dtype", "read"),
    [
        ([2**60 + 1, 7], np.int64, [2**60 + 1, 7]),  # exactly: float64 would round the id
        ([2**64 - 1, 1], np.uint64, [2**64 - 1, 1]),
        ([True, False], np.bool_, [True, False]),
        ([0.5, None, 2], np.float64, [0.5, None, 2.0]),
    ],
)
def test_numbers_held_as_python_objects_are_written_as_v2_types_them(
    held: list[object], dtype: type, read: list[object]
) -> None:
    # They were a 406 ("cannot be written without pickle"), and V2 answered the same
    # predictions as INT64, UINT64, BOOL or FP64: both routes now type them alike.
    from modelyard.serving.v2.tensors import output_tensors

    predictions = np.array(held, dtype=object)
    back = np.load(io.BytesIO(encode(predictions, NPY)), allow_pickle=False)
    assert back.dtype == dtype
    assert [None if v != v else v for v in back.tolist()] == read  # NaN read as None
    (tensor,) = output_tensors(predictions, None, None)
    assert tensor.datatype == {"int64": "INT64", "uint64": "UINT64", "bool": "BOOL",
                               "float64": "FP64"}[np.dtype(dtype).name]  # fmt: skip
