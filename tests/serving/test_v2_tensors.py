"""The V2 tensor codec (protocol-neutral, shared by REST and gRPC): every datatype from JSON
values and raw bytes, shapes against counts, the rows a model gets, its outputs, its metadata,
and the REST body framing of the binary tensor data extension."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelyard.domain import ColumnSpec, ModelSpec, Signature, Trust
from modelyard.errors import InvalidPayload, ModelFailed, SignatureMismatch
from modelyard.serving.v2.datatypes import DATATYPES, datatype_of, is_text_dtype, numpy_dtype
from modelyard.serving.v2.payload import encode_response, parse_request
from modelyard.serving.v2.tensors import (
    INPUT,
    OUTPUT,
    Tensor,
    check_requested,
    model_metadata,
    output_tensors,
    rows_from_tensors,
)

NUMERIC = [d for d in DATATYPES if d != "BYTES"]


def numeric_signature(n: int = 3, dtype: str = "float64", named: bool = True) -> Signature:
    return Signature(
        inputs=tuple(ColumnSpec(dtype, f"f{i}" if named else None) for i in range(n)),
        outputs=(ColumnSpec("float32"),),
    )


TEXT = Signature(inputs=(ColumnSpec("str", "review"),), outputs=(ColumnSpec("int64"),))
MIXED = Signature(
    inputs=(ColumnSpec("float64", "stars"), ColumnSpec("object", "review")),
    outputs=(ColumnSpec("int64"),),
)


def length_prefixed(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


# --- datatypes -----------------------------------------------------------------------------


def test_every_datatype_maps_to_numpy_and_back() -> None:
    assert DATATYPES == (
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
        "FP16", "FP32", "FP64", "BYTES",
    )  # fmt: skip
    for datatype in NUMERIC:
        assert datatype_of(numpy_dtype(datatype)) == datatype
    assert numpy_dtype("BYTES") == np.dtype(object)
    assert datatype_of(np.dtype(">f8")) == "FP64"  # byte order does not change the type
    assert datatype_of(np.dtype("<U3")) == datatype_of(np.dtype(object)) == "BYTES"
    assert datatype_of(np.dtype(np.complex128)) is None
    assert datatype_of(np.dtype("datetime64[s]")) is None
    with pytest.raises(InvalidPayload, match=r"unknown datatype 'FP8'.*BOOL, UINT8"):
        numpy_dtype("FP8")
    with pytest.raises(InvalidPayload, match="unknown datatype 'fp32'"):
        numpy_dtype("fp32")  # the protocol's strings are case-sensitive


def test_signature_dtype_names() -> None:
    assert datatype_of("float32") == "FP32"
    assert datatype_of("int64") == "INT64"
    assert datatype_of("bool") == "BOOL"
    for text in ("str", "object", "string", "string[pyarrow]"):
        assert datatype_of(text) == "BYTES"
        assert is_text_dtype(text)
    assert datatype_of("category") is None
    assert not is_text_dtype("float64") and not is_text_dtype("category")


# --- tensors from JSON values and raw bytes --------------------------------------------------


@pytest.mark.parametrize("datatype", NUMERIC)
def test_every_numeric_datatype_from_nested_flat_and_raw(datatype: str) -> None:
    values = [[True, False], [True, True]] if datatype == "BOOL" else [[0, 1], [2, 3]]
    nested = Tensor.from_values("x", datatype, [2, 2], values)
    flat = Tensor.from_values("x", datatype, [2, 2], [v for row in values for v in row])
    want = np.array(values, dtype=numpy_dtype(datatype)).reshape(-1)
    assert isinstance(nested.data, np.ndarray) and isinstance(flat.data, np.ndarray)
    assert nested.data.dtype == numpy_dtype(datatype)
    np.testing.assert_array_equal(nested.data.reshape(-1), want)
    np.testing.assert_array_equal(flat.data.reshape(-1), want)
    raw = Tensor.from_raw("x", datatype, [2, 2], want.tobytes())
    np.testing.assert_array_equal(raw.data, want)
    assert raw.raw() == flat.raw() == want.tobytes()
    assert (nested.shape, nested.datatype) == ((2, 2), datatype)


@given(
    hnp.arrays(
        dtype=st.sampled_from(
            [np.dtype(f"<{c}{s}") for c, s in ("f2", "f4", "f8", "i1", "u2", "i8", "u8")]
        ),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
    )
)
def test_raw_round_trip(array: np.ndarray) -> None:
    datatype = datatype_of(array.dtype)
    assert datatype is not None
    tensor = Tensor.from_raw("x", datatype, list(array.shape), array.tobytes())
    assert tensor.raw() == array.tobytes()
    np.testing.assert_array_equal(tensor.data, array.reshape(-1))


def test_bool_raw_is_one_byte_an_element() -> None:
    tensor = Tensor.from_raw("b", "BOOL", [3], b"\x01\x00\x01")
    np.testing.assert_array_equal(tensor.data, [True, False, True])
    assert tensor.raw() == b"\x01\x00\x01"


def test_null_is_nan_for_floats_only() -> None:
    tensor = Tensor.from_values("x", "FP32", [3], [1.5, None, 2])
    assert isinstance(tensor.data, np.ndarray)
    assert tensor.data.dtype == np.float32 and np.isnan(tensor.data[1])
    with pytest.raises(InvalidPayload, match="element 2 is not an INT64 value: null"):
        Tensor.from_values("x", "INT64", [2], [1, None])
    with pytest.raises(InvalidPayload, match="element 2 is not an FP64 value"):
        Tensor.from_values("x", "FP64", [2], [1, {"a": 1}])
    # A null (NaN) before the element that is wrong is not the one named.
    wrong = r"element 4 \(index \[0, 3\]\) is not an FP64 value: true"
    with pytest.raises(InvalidPayload, match=wrong):
        Tensor.from_values("x", "FP64", [1, 4], [[None, 2, 3, True]])


@pytest.mark.parametrize(
    ("datatype", "shape", "values", "words"),
    [
        ("FP64", [2, 2], [1, 2, 3], "shape [2, 2] holds 4 elements, data has 3"),
        ("FP64", [2, 2], [[1, 2, 3, 4]], "nested as [1, 4] but the shape is [2, 2]"),
        ("FP64", [2, 2], [[1, 2], [3]], "ragged"),
        ("FP64", [2], "1,2", "data must be a list"),
        ("FP64", [2, -1], [1, 2], "non-negative integers"),
        ("FP64", [True], [1], "non-negative integers"),
        ("FP64", "2", [1, 2], "non-negative integers"),
        ("FP64", [2], [1, "2"], 'element 2 (index [1]) is not an FP64 value: "2"'),
        ("FP32", [1], [1e300], "out of the range of FP32"),
        ("FP16", [1], [70000], "out of the range of FP16"),
        ("INT8", [2], [1, 128], "out of the range of INT8"),
        ("UINT16", [1], [-1], "out of the range of UINT16"),
        # Just past the 64-bit ends (numpy's mixed comparisons round them onto the end).
        ("INT64", [1], [2**63], "out of the range of INT64"),
        ("UINT64", [1], [2.0**64], "out of the range of UINT64"),
        ("UINT64", [1], [-1], "out of the range of UINT64"),
        ("INT32", [1], [2147483648.0], "out of the range of INT32"),
        ("INT64", [1], [1.5], "must be integers"),
        ("BOOL", [2], [1, 0], "true or false"),
        ("BYTES", [2], ["a", 2], "BYTES element 2 must be a string"),
        ("BYTES", [3], ["a", "b"], "holds 3 elements, data has 2"),
        ("STRING", [1], ["a"], "unknown datatype 'STRING'"),
    ],
)
def test_bad_values_are_refused_naming_the_tensor(
    datatype: str, shape: object, values: object, words: str
) -> None:
    with pytest.raises(InvalidPayload, match=r"input 'x'|unknown datatype") as caught:
        Tensor.from_values("x", datatype, shape, values)  # type: ignore[arg-type]
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("datatype", "shape", "values", "words"),
    [
        (
            "FP64",
            [1, 3],
            [[True, False, True]],
            "element 1 (index [0, 0]) is not an FP64 value: true",
        ),
        ("FP64", [1, 3], [[1.5, 2, True]], "element 3 (index [0, 2]) is not an FP64 value: true"),
        ("FP32", [2, 2], [[1, 2], [False, 4]], "element 3 (index [1, 0]) is not an FP32 value"),
        ("FP64", [3], [0.5, "1.5", 2], 'element 2 (index [1]) is not an FP64 value: "1.5"'),
        ("FP16", [2], ["1", "2"], 'element 1 (index [0]) is not an FP16 value: "1"'),
        ("INT64", [3], [1, 2, True], "element 3 (index [2]) is not an INT64 value: true"),
        ("UINT8", [1], [True], "element 1 (index [0]) is not a UINT8 value: true"),
    ],
)
def test_numeric_data_must_be_json_numbers(
    datatype: str, shape: list[int], values: list[object], words: str
) -> None:
    """The protocol's numeric datatypes take JSON numbers: numpy would read true as 1 and
    "1.5" as 1.5, so a boolean or a string is refused, named with its position."""
    with pytest.raises(InvalidPayload, match="input 'x'") as caught:
        Tensor.from_values("x", datatype, shape, values)
    assert words in str(caught.value)
    assert f"{datatype} data must be JSON numbers" in str(caught.value)


def test_bool_takes_booleans_and_bytes_takes_strings() -> None:
    flags = Tensor.from_values("b", "BOOL", [1, 3], [[True, False, True]])
    assert np.asarray(flags.data).tolist() == [True, False, True]
    # The element that is not a boolean is named, not the first boolean before it.
    for values, words in (
        ([True, None], "element 2 is not a BOOL value: null"),
        ([False, {"a": 1}], 'element 2 is not a BOOL value: {"a":1}'),
    ):
        with pytest.raises(InvalidPayload, match="input 'b'") as caught:
            Tensor.from_values("b", "BOOL", [2], values)
        assert words in str(caught.value)
    words = Tensor.from_values("t", "BYTES", [2], ["1.5", "true"])
    assert words.data == [b"1.5", b"true"]


def test_a_rest_body_with_booleans_anywhere_has_its_numbers_checked() -> None:
    """The REST adapter skips the scan for booleans when the body has neither word; a body
    asking for binary output (``true``) still has a boolean in its data refused."""

    def body(data: str, parameters: str = "") -> bytes:
        tensor = f'{{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": {data}}}'
        return f'{{{parameters}"inputs": [{tensor}]}}'.encode()

    (plain,) = parse_request(body("[[1, 2.5, 3]]"), None).inputs
    assert np.asarray(plain.data).tolist() == [1.0, 2.5, 3.0]
    wants_binary = '"parameters": {"binary_data_output": true}, '
    with pytest.raises(InvalidPayload, match=r"element 2 \(index \[0, 1\]\) is not an FP64"):
        parse_request(body("[[1, false, 3]]", wants_binary), None)
    with pytest.raises(InvalidPayload, match=r"element 3 \(index \[0, 2\]\) is not an FP64"):
        parse_request(body("[[1, 2, true]]"), None)


def test_the_ends_of_the_64_bit_ranges_are_taken_exactly() -> None:
    ends = Tensor.from_values("x", "INT64", [2], [2**63 - 1, -(2**63)])
    assert isinstance(ends.data, np.ndarray) and ends.data.tolist() == [2**63 - 1, -(2**63)]
    top = Tensor.from_values("x", "UINT64", [1], [2**64 - 1])
    assert isinstance(top.data, np.ndarray) and top.data.tolist() == [2**64 - 1]


@pytest.mark.parametrize("booleans", [True, False])  # REST JSON; gRPC's typed contents
@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("UINT64", [2**64 - 1, 1]),  # numpy makes these float64: 2**64 - 1 became 2**64
        ("UINT64", [2**53 + 1, 2**64 - 2, 0]),
        ("INT64", [2**63 - 1, 1.0]),  # an integral float beside the top
        ("INT64", [-(2**63), 2**53 + 1, 2.0]),
    ],
)
def test_64_bit_integers_beside_other_values_are_taken_exactly(
    datatype: str, values: list[float], booleans: bool
) -> None:
    tensor = Tensor.from_values("x", datatype, [len(values)], values, booleans=booleans)
    assert isinstance(tensor.data, np.ndarray) and tensor.data.dtype == numpy_dtype(datatype)
    assert tensor.data.tolist() == [int(v) for v in values]


@pytest.mark.parametrize(
    ("datatype", "values"),
    [("UINT64", [2**64, 1]), ("INT64", [2**63, 1.0]), ("INT64", [-(2**63) - 1, 1.0])],
)
def test_64_bit_integers_just_past_the_ends_beside_others_are_refused(
    datatype: str, values: list[float]
) -> None:
    with pytest.raises(InvalidPayload, match=f"out of the range of {datatype}"):
        Tensor.from_values("x", datatype, [2], values)


def test_integral_floats_are_integers() -> None:
    tensor = Tensor.from_values("x", "INT32", [2], [1.0, -3.0])
    assert isinstance(tensor.data, np.ndarray) and tensor.data.dtype == np.int32
    assert tensor.data.tolist() == [1, -3]


def test_bytes_from_strings_and_length_prefixed_raw() -> None:
    nested = Tensor.from_values("t", "BYTES", [2, 1], [["héllo"], ["x"]])
    assert nested.data == ["héllo".encode(), b"x"]
    raw = Tensor.from_raw("t", "BYTES", [2, 1], length_prefixed("héllo".encode(), b"x"))
    assert raw.data == nested.data and raw.raw() == length_prefixed("héllo".encode(), b"x")
    assert Tensor.from_raw("t", "BYTES", [1], length_prefixed(b"")).data == [b""]
    assert nested.values() == ["héllo", "x"]


@pytest.mark.parametrize(
    ("datatype", "shape", "raw", "words"),
    [
        ("FP32", [2], b"\x00" * 7, "7 bytes of binary data, but shape [2] of FP32 needs 8"),
        ("INT64", [1, 2], b"\x00" * 24, "needs 16"),
        ("BYTES", [1], b"\x05\x00\x00\x00ab", "says 5 bytes; 2 are left"),
        ("BYTES", [1], b"\x01\x00", "ends inside an element's length"),
        ("BYTES", [2], length_prefixed(b"a"), "holds 2 elements, the BYTES data 1"),
        ("BYTES", [1], length_prefixed(b"a", b"b"), "holds 1 elements, the BYTES data more"),
        ("INT4", [1], b"\x00", "unknown datatype"),
    ],
)
def test_bad_raw_data_is_refused(datatype: str, shape: list[int], raw: bytes, words: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        Tensor.from_raw("x", datatype, shape, raw)
    assert words in str(caught.value)


# --- rows for the model ----------------------------------------------------------------------


def test_one_matrix_tensor_becomes_float64_rows() -> None:
    rows = rows_from_tensors(
        [Tensor.from_values("anything", "INT16", [2, 3], [1, 2, 3, 4, 5, 6])], numeric_signature()
    )
    assert rows.dtype == np.float64 and rows.flags.c_contiguous and rows.flags.writeable
    np.testing.assert_array_equal(rows, [[1, 2, 3], [4, 5, 6]])


def test_raw_float64_rows_are_copied_out_of_the_read_only_body() -> None:
    body = np.arange(6, dtype="<f8").tobytes()
    rows = rows_from_tensors([Tensor.from_raw("x", "FP64", [2, 3], body)], numeric_signature())
    assert rows.flags.writeable and rows.flags.c_contiguous
    np.testing.assert_array_equal(rows, [[0, 1, 2], [3, 4, 5]])


def test_columns_in_any_order_become_rows_in_signature_order() -> None:
    columns = [
        Tensor.from_values("f2", "FP32", [2], [2.5, 5.5]),
        Tensor.from_values("f0", "BOOL", [2, 1], [[True], [False]]),
        Tensor.from_values("f1", "UINT8", [2], [1, 4]),
    ]
    rows = rows_from_tensors(columns, numeric_signature())
    assert rows.dtype == np.float64 and rows.flags.c_contiguous
    np.testing.assert_array_equal(rows, [[1, 1, 2.5], [0, 4, 5.5]])


def test_one_feature_takes_a_column_under_any_name() -> None:
    signature = numeric_signature(1)
    for shape, values in (([3], [1, 2, 3]), ([3, 1], [[1], [2], [3]])):
        rows = rows_from_tensors([Tensor.from_values(INPUT, "FP64", shape, values)], signature)
        np.testing.assert_array_equal(rows, [[1], [2], [3]])


@pytest.mark.parametrize(
    ("tensors", "signature", "error", "words"),
    [
        ([Tensor.from_values("x", "FP64", [1, 2], [1, 2])], numeric_signature(), SignatureMismatch,
         "the model takes 3 features ['f0', 'f1', 'f2'], so [n, 3]"),
        ([Tensor.from_values("f0", "FP64", [1], [1]), Tensor.from_values("g", "FP64", [1], [1])],
         numeric_signature(), SignatureMismatch,
         "missing features: ['f1', 'f2']; unexpected inputs: ['g']"),
        ([Tensor.from_values("f0", "FP64", [1], [1])] * 2, numeric_signature(2), InvalidPayload,
         "is given twice"),
        ([Tensor.from_values("f0", "FP64", [1], [1]),
          Tensor.from_values("f1", "FP64", [2], [1, 2])],
         numeric_signature(2), InvalidPayload, "has 2 rows, input 'f0' has 1"),
        ([Tensor.from_values("x", "FP64", [1, 1, 3], [1, 2, 3])], numeric_signature(),
         InvalidPayload, "send one [n, k] tensor, or one [n] (or [n, 1]) tensor per feature"),
        ([Tensor.from_values("x", "FP64", [0, 3], [])], numeric_signature(), InvalidPayload,
         "no rows"),
        ([Tensor.from_values("a", "FP64", [1], [1]), Tensor.from_values("b", "FP64", [1], [2])],
         numeric_signature(2, named=False), SignatureMismatch, "features have no names"),
        ([Tensor("x", "FP64", (2, 2), np.zeros(3))], None, InvalidPayload,
         "holds 4 elements, data has 3"),
        ([], numeric_signature(), InvalidPayload, "no input tensors"),
        ([Tensor.from_values("x", "BYTES", [1, 3], ["a", "b", "c"])], numeric_signature(),
         SignatureMismatch, "is BYTES, but these features take numbers: ['f0', 'f1', 'f2']"),
        ([Tensor.from_values("f0", "BYTES", [1], ["1.5"])], numeric_signature(1), SignatureMismatch,
         "feature 'f0' takes numbers, not BYTES"),
        ([Tensor.from_values("review", "FP64", [1], [1])], TEXT, SignatureMismatch,
         "feature 'review' takes text: send it as BYTES, not FP64"),
        ([Tensor.from_values("x", "FP64", [1, 2], [1, 2])], MIXED, SignatureMismatch,
         "features ['review'] take text"),
    ],
)  # fmt: skip
def test_rows_refused(
    tensors: list[Tensor], signature: Signature | None, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as caught:
        rows_from_tensors(tensors, signature)
    assert words in str(caught.value)


def test_text_features_become_a_dataframe_with_the_signature_names() -> None:
    frame = rows_from_tensors(
        [
            Tensor.from_raw(
                "review", "BYTES", [2], length_prefixed(b"great film", "dull, ç".encode())
            )
        ],
        TEXT,
    )
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["review"]
    assert frame["review"].tolist() == ["great film", "dull, ç"]
    mixed = rows_from_tensors(
        [
            Tensor.from_values("review", "BYTES", [2, 1], [["good"], ["bad"]]),
            Tensor.from_values("stars", "INT32", [2], [5, 1]),
        ],
        MIXED,
    )
    assert list(mixed.columns) == ["stars", "review"]
    assert mixed["stars"].dtype == np.float64 and mixed["stars"].tolist() == [5.0, 1.0]
    assert mixed["review"].tolist() == ["good", "bad"]
    with pytest.raises(InvalidPayload, match="not UTF-8 text"):
        rows_from_tensors([Tensor.from_raw("review", "BYTES", [1], length_prefixed(b"\xff"))], TEXT)


def test_without_a_signature_the_tensors_decide() -> None:
    rows = rows_from_tensors([Tensor.from_values("m", "FP64", [1, 4], [1, 2, 3, 4])], None)
    np.testing.assert_array_equal(rows, [[1, 2, 3, 4]])
    frame = rows_from_tensors(
        [Tensor.from_values("b", "FP64", [1], [1]), Tensor.from_values("a", "BYTES", [1], ["x"])],
        None,
    )
    assert list(frame.columns) == ["b", "a"] and frame.iloc[0].tolist() == [1.0, "x"]


# --- outputs -------------------------------------------------------------------------------


def test_outputs_keep_the_predictions_dtype_and_shape() -> None:
    signature = numeric_signature()
    (probabilities,) = output_tensors(np.array([0.25, 0.5], dtype=np.float32), signature, None)
    assert (probabilities.name, probabilities.datatype, probabilities.shape) == (
        OUTPUT,
        "FP32",
        (2,),
    )
    assert probabilities.raw() == np.array([0.25, 0.5], dtype="<f4").tobytes()
    assert orjson.loads(
        orjson.dumps(probabilities.values(), option=orjson.OPT_SERIALIZE_NUMPY)
    ) == [
        0.25,
        0.5,
    ]
    (matrix,) = output_tensors(np.arange(6, dtype=np.int64).reshape(3, 2), signature, [OUTPUT])
    assert (matrix.datatype, matrix.shape) == ("INT64", (3, 2))
    assert matrix.values().tolist() == [0, 1, 2, 3, 4, 5]  # flat, row-major
    (labels,) = output_tensors(np.array(["cat", "dög"]), signature, [])
    assert (labels.datatype, labels.data, labels.values()) == (
        "BYTES",
        [b"cat", "dög".encode()],
        ["cat", "dög"],
    )
    assert labels.raw() == length_prefixed(b"cat", "dög".encode())
    (missing,) = output_tensors(np.array([1.5, None], dtype=object), signature, None)
    assert missing.datatype == "FP64" and np.isnan(missing.values()[1])
    (scalar,) = output_tensors(np.float64(3.0), signature, None)
    assert scalar.shape == (1,)
    (flags,) = output_tensors(np.array([True, False]), signature, None)
    assert flags.datatype == "BOOL" and flags.raw() == b"\x01\x00"


def test_object_predictions_of_integers_or_booleans_keep_their_type() -> None:
    """An object array of Python integers (ids a pyfunc returns, a pandas object column) or
    of booleans was read as float64: ids past 2**53 came back rounded (2**60 + 1 as
    1.152921504606847e18) and flags as 1.0/0.0 in an FP64 tensor, where the SageMaker route
    answers the same predictions exactly, as integers and true/false."""
    big = 2**60 + 1
    (ids,) = output_tensors(np.array([big, -3], dtype=object), None, None)
    assert ids.datatype == "INT64" and ids.values().tolist() == [big, -3]
    assert orjson.loads(orjson.dumps(ids.values(), option=orjson.OPT_SERIALIZE_NUMPY)) == [big, -3]
    (top,) = output_tensors(np.array([2**64 - 1, np.uint64(7)], dtype=object), None, None)
    assert top.datatype == "UINT64" and top.raw() == np.array([2**64 - 1, 7], "<u8").tobytes()
    (grid,) = output_tensors(np.array([[1, 2], [3, np.int32(4)]], dtype=object), None, None)
    assert (grid.datatype, grid.shape, grid.values().tolist()) == ("INT64", (2, 2), [1, 2, 3, 4])
    (flags,) = output_tensors(np.array([True, np.bool_(False)], dtype=object), None, None)
    assert flags.datatype == "BOOL" and flags.raw() == b"\x01\x00"
    (mixed,) = output_tensors(np.array([1, 2.5, None], dtype=object), None, None)
    assert mixed.datatype == "FP64" and mixed.values()[:2].tolist() == [1.0, 2.5]
    (huge,) = output_tensors(np.array([2**70, 1], dtype=object), None, None)
    assert huge.datatype == "FP64"  # no integer datatype holds it


def test_unknown_outputs_and_unsendable_predictions() -> None:
    with pytest.raises(InvalidPayload, match=r"unknown output 'probabilities'.*'output-0'"):
        check_requested(["probabilities"])
    with pytest.raises(InvalidPayload, match="requested twice"):
        output_tensors(np.zeros(2), None, [OUTPUT, OUTPUT])
    with pytest.raises(ModelFailed, match="complex128"):
        output_tensors(np.zeros(2, dtype=np.complex128), None, None)
    with pytest.raises(ModelFailed, match="object"):
        output_tensors(np.array([{"a": 1}, 2], dtype=object), None, None)
    with pytest.raises(ModelFailed, match=r"text UTF-8 cannot encode.*'\\udce9'"):
        output_tensors(np.array(["caf\udce9"], dtype=object), None, None)  # gRPC's path too
    (raw_bytes,) = output_tensors(np.array([b"\xff"], dtype=object), None, None)
    with pytest.raises(InvalidPayload, match=r"not UTF-8.*binary data"):
        raw_bytes.values()


# --- metadata ------------------------------------------------------------------------------


def spec(signature: Signature | None, flavor: str = "xgboost", version: int = 3) -> ModelSpec:
    return ModelSpec("churn", version, flavor, "ubj", "d" * 64, Trust(), signature=signature)


def test_metadata_of_numeric_text_and_unknown_models() -> None:
    assert model_metadata("churn-api", spec(numeric_signature(4, "float32")), ["1", "3"]) == {
        "name": "churn-api",
        "versions": ["1", "3"],
        "platform": "xgboost",
        "inputs": [{"name": INPUT, "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": OUTPUT, "datatype": "FP32", "shape": [-1]}],
    }
    mixed_numbers = Signature(
        inputs=(ColumnSpec("int64", "a"), ColumnSpec("float64", "b")),
        outputs=(ColumnSpec("float64"),) * 2,
        output_shape=(-1, 2),
    )
    described = model_metadata("m", spec(mixed_numbers, "lightgbm"))
    assert described["versions"] == ["3"] and described["platform"] == "lightgbm"
    assert described["inputs"] == [{"name": INPUT, "datatype": "FP64", "shape": [-1, 2]}]
    assert described["outputs"] == [{"name": OUTPUT, "datatype": "FP64", "shape": [-1, 2]}]
    text = model_metadata("reviews", spec(MIXED, "sklearn"))
    assert text["inputs"] == [
        {"name": "stars", "datatype": "FP64", "shape": [-1]},
        {"name": "review", "datatype": "BYTES", "shape": [-1]},
    ]
    assert text["outputs"] == [{"name": OUTPUT, "datatype": "INT64", "shape": [-1]}]
    unknown = model_metadata("p", spec(None, "pyfunc"))
    assert unknown["inputs"] == [{"name": INPUT, "datatype": "FP64", "shape": [-1, -1]}]
    assert unknown["outputs"] == [{"name": OUTPUT, "datatype": "FP64", "shape": [-1]}]


# --- REST bodies with binary tensor data -------------------------------------------------------


def binary_body(header: dict[str, object], *blobs: bytes) -> tuple[bytes, str]:
    text = orjson.dumps(header)
    return text + b"".join(blobs), str(len(text))


def test_request_with_binary_and_json_inputs() -> None:
    matrix = np.arange(6, dtype="<f4")
    body, length = binary_body(
        {
            "id": "r1",
            "parameters": {"binary_data_output": True, "priority": 2},
            "inputs": [
                {"name": "a", "shape": [2, 3], "datatype": "FP32",
                 "parameters": {"binary_data_size": 24}},
                {"name": "b", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                {"name": "c", "shape": [1], "datatype": "BYTES",
                 "parameters": {"binary_data_size": 5}},
            ],
            "outputs": [{"name": OUTPUT, "parameters": {"binary_data": False}}],
        },
        matrix.tobytes(),
        length_prefixed(b"y"),
    )  # fmt: skip
    request = parse_request(body, length)
    assert request.id == "r1" and request.outputs == [OUTPUT]
    assert [t.name for t in request.inputs] == ["a", "b", "c"]
    np.testing.assert_array_equal(request.inputs[0].data, matrix)
    assert request.inputs[2].data == [b"y"]
    assert request.binary_default and not request.wants_binary(OUTPUT)


@pytest.mark.parametrize(
    ("length", "tail", "words"),
    [
        ("9999", b"", "Inference-Header-Content-Length is 9999, but the body has"),
        ("ten", b"", "malformed Inference-Header-Content-Length"),
        (None, b"", "only 0 bytes of binary data follow the JSON object (send the JSON"),
        # The bytes sent, without the header that says where the JSON ends: the caller is
        # told about the header, not that the body is malformed JSON at column 1.
        (None, np.array([1.5, -2.0], "<f4").tobytes(), "has no Inference-Header-Content-Le"),
        (None, b"\x00" * 8, "has no Inference-Header-Content-Length"),
        ("exact", b"\x00" * 12, "4 bytes after the JSON object"),
        ("short", b"\x00" * 8, "malformed JSON (the JSON object's length is Inference-Header"),
    ],
)
def test_binary_framing_that_does_not_fit_the_body(
    length: str | None, tail: bytes, words: str
) -> None:
    header = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}
        ]
    }
    body, exact = binary_body(header, tail)
    given_length = {"exact": exact, "short": str(int(exact) - 3)}.get(length or "", length)
    with pytest.raises(InvalidPayload) as caught:
        parse_request(body, given_length)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("request_body", "words"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b'{"inputs": []}', '"inputs" must be a non-empty list'),
        (b'{"id": 7, "inputs": [{}]}', '"id" must be a string'),
        (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32"}]}', 'has no "data"'),
        (b'{"inputs": [{"name": "a", "shape": [1], "data": [1]}]}', '"datatype" must be a string'),
        (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1],'
         b' "parameters": {"binary_data_size": 4}}]}', 'give "data" or binary_data_size'),
        (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32",'
         b' "parameters": {"shared_memory_region": "r"}}]}', "shared-memory extension"),
        (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}],'
         b' "outputs": [{"name": "output-0", "parameters": {"classification": 2}}]}',
         "classification extension"),
        (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}],'
         b' "parameters": {"binary_data_output": "yes"}}', "must be true or false"),
        (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}],'
         b' "outputs": "output-0"}', '"outputs" must be a list'),
        # A falsy non-object was let through ("x" was refused, false and 0 were not).
        (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1],'
         b' "parameters": false}]}', '"parameters" must be a JSON object'),
        (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1],'
         b' "parameters": []}]}', '"parameters" must be a JSON object'),
    ],
)  # fmt: skip
def test_malformed_requests(request_body: bytes, words: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_request(request_body, None)
    assert words in str(caught.value)


def test_response_binary_per_output_or_by_default() -> None:
    request = parse_request(
        b'{"id": "q", "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]}',
        None,
    )
    outputs = output_tensors(np.array([0.5, 2.0]), None, None)
    body, length = encode_response("churn-api", "2", request, outputs)
    assert length is None
    assert orjson.loads(body) == {
        "model_name": "churn-api",
        "model_version": "2",
        "id": "q",
        "outputs": [{"name": OUTPUT, "datatype": "FP64", "shape": [2], "data": [0.5, 2.0]}],
    }
    request.binary_default = True
    body, length = encode_response("churn-api", "2", request, outputs)
    assert length is not None
    header = orjson.loads(body[:length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert "data" not in header["outputs"][0]
    assert np.frombuffer(body[length:], dtype="<f8").tolist() == [0.5, 2.0]


def test_a_request_that_is_not_utf8_names_the_byte_where_it_stops_being_utf8() -> None:
    """orjson's words were "surrogates not allowed: line 1 column 1 (char 0)", with or without
    binary data after the JSON object: neither the cause nor the place."""
    request = b'{"id": "caf\xe9", "inputs": []}'
    with pytest.raises(InvalidPayload) as refused:
        parse_request(request, None)
    message = str(refused.value)
    assert "the JSON object is not UTF-8 text" in message, message
    assert "byte 0xe9 in position 11" in message, message
    assert "surrogates" not in message and "char 0" not in message, message
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP64",
                    "shape": [1],
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    )
    with pytest.raises(InvalidPayload) as refused:
        parse_request(header + struct.pack("<d", 0.5), None)  # the header left out
    message = str(refused.value)
    assert "no Inference-Header-Content-Length" in message, message
    assert f"in position {len(header) + 6}" in message and "char 0" not in message, message


def test_an_fp16_output_in_json_is_each_values_shortest_text() -> None:
    # float16's 0.1 widened to float64 is 0.0999755859375: JSON must say 0.1, as FP16 reads
    # it back to the same value, and the raw bytes stay FP16's.
    halves = np.array([0.1, 2.5, np.nan, 65504], dtype=np.float16)
    (out,) = output_tensors(halves, numeric_signature(), None)
    assert out.datatype == "FP16" and out.raw() == halves.astype("<f2").tobytes()
    text = orjson.dumps(out.values(), option=orjson.OPT_SERIALIZE_NUMPY)
    assert text == b"[0.1,2.5,null,65500.0]"  # 65504's shortest FP16 text: 6.55e+04
    back = np.array([np.nan if v is None else v for v in orjson.loads(text)], dtype=np.float16)
    np.testing.assert_array_equal(back, halves)
