"""Serializers and deserializers, as the SageMaker SDK's: what each writes and reads."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from modelyard import (
    CSVDeserializer,
    CSVSerializer,
    JSONDeserializer,
    JSONSerializer,
    NumpyDeserializer,
    NumpySerializer,
)


def test_content_types_and_accepts() -> None:
    assert CSVSerializer().CONTENT_TYPE == "text/csv"
    assert JSONSerializer().CONTENT_TYPE == "application/json"
    assert NumpySerializer().CONTENT_TYPE == "application/x-npy"
    assert CSVDeserializer().ACCEPT == ("text/csv",)
    assert JSONDeserializer().ACCEPT == ("application/json",)
    assert NumpyDeserializer().ACCEPT == ("application/x-npy",)
    assert NumpyDeserializer(accept="application/json").ACCEPT == ("application/json",)


def test_csv_serializer_writes_headerless_rows() -> None:
    csv = CSVSerializer()
    assert csv.serialize([1.5, 2, 3]) == b"1.5,2,3\n"
    assert csv.serialize([[1, 2], [3, 4]]) == b"1,2\n3,4\n"
    assert csv.serialize(np.array([[0.1 + 0.2, 1e-300]])) == b"0.30000000000000004,1e-300\n"
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, None]})
    assert csv.serialize(frame) == b"1.0,3.0\n2.0,nan\n"
    assert csv.serialize([["x, y", None]]) == b'"x, y",\n'
    # Bodies already made go as they are.
    assert csv.serialize("1,2\n") == b"1,2\n"
    assert csv.serialize(b"1,2\n") == b"1,2\n"
    assert csv.serialize(io.StringIO("5,6\n")) == b"5,6\n"


def test_json_serializer_takes_arrays_and_frames() -> None:
    json_ = JSONSerializer()
    assert json_.serialize([[1, 2]]) == b"[[1, 2]]"
    assert json_.serialize(np.array([[1.5, 2.0]])) == b"[[1.5, 2.0]]"
    assert json_.serialize({"instances": np.array([1, 2])}) == b'{"instances": [1, 2]}'
    frame = pd.DataFrame({"a": [1.0], "b": [2.0]})
    assert json_.serialize(frame) == b'[{"a": 1.0, "b": 2.0}]'
    with pytest.raises(TypeError, match="object"):
        json_.serialize([object()])


def test_numpy_serializer_writes_npy_without_pickle() -> None:
    body = NumpySerializer().serialize(np.arange(6, dtype=np.float32).reshape(2, 3))
    back = np.load(io.BytesIO(body), allow_pickle=False)
    assert back.dtype == np.float32 and back.shape == (2, 3)
    assert np.load(io.BytesIO(NumpySerializer(dtype="float64").serialize([[1, 2]]))).dtype == (
        np.float64
    )
    with pytest.raises(TypeError, match="pickle"):
        NumpySerializer().serialize(np.array([{"a": 1}], dtype=object))


def test_deserializers_read_what_a_server_answers() -> None:
    assert JSONDeserializer().deserialize(
        io.BytesIO(b'{"predictions": [1]}'), "application/json"
    ) == {"predictions": [1]}
    assert CSVDeserializer().deserialize(io.BytesIO(b"0.5\n1\n\n"), "text/csv; charset=utf-8") == [
        ["0.5"],
        ["1"],
    ]
    numpy = NumpyDeserializer()
    npy = io.BytesIO()
    np.save(npy, np.array([0.25, 0.5]))
    np.testing.assert_array_equal(
        numpy.deserialize(io.BytesIO(npy.getvalue()), "application/x-npy"), [0.25, 0.5]
    )
    json_answer = b'{"predictions": [[1, 2], [3, 4]]}'
    np.testing.assert_array_equal(
        numpy.deserialize(json_answer, "application/json"), [[1, 2], [3, 4]]
    )
    np.testing.assert_array_equal(numpy.deserialize(b"0.5\n1.5\n", "text/csv"), [0.5, 1.5])
    np.testing.assert_array_equal(numpy.deserialize(b"1,2\n3,4\n", "text/csv"), [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="text/html"):
        numpy.deserialize(b"<html>", "text/html")


def test_numpy_deserializer_never_unpickles_unless_asked() -> None:
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        NumpyDeserializer().deserialize(pickled.getvalue(), "application/x-npy")
    allowed = NumpyDeserializer(allow_pickle=True).deserialize(
        pickled.getvalue(), "application/x-npy"
    )
    assert allowed[0] == {"a": 1}


def test_numpy_deserializer_reads_json_nulls_as_nan() -> None:
    """A server writes a NaN prediction as null in JSON: it reads back as a float NaN, as the
    same answer does in CSV, not as an object array holding None."""
    numpy = NumpyDeserializer(accept="application/json")
    one = numpy.deserialize(b'{"predictions":[0.5,null,2]}', "application/json")
    assert one.dtype == np.float64
    np.testing.assert_array_equal(one, [0.5, np.nan, 2.0])
    rows = numpy.deserialize(b'{"predictions":[[0.5,null],[1,2]]}', "application/json")
    assert rows.dtype == np.float64 and rows.shape == (2, 2) and np.isnan(rows[0, 1])
    as_csv = numpy.deserialize(b"0.5\nnan\n2\n", "text/csv")
    np.testing.assert_array_equal(one, as_csv)
    labels = numpy.deserialize(b'{"predictions":["yes",null]}', "application/json")
    assert labels.tolist() == ["yes", None]  # not numbers: kept as they came
