"""Where V2 gRPC messages carry tensor data (``grpc_contents``): typed ``contents`` or raw bytes
in, the same form out, on real protobuf messages. The end-to-end paths (Triton's client, a real
server) are in ``tests/e2e/test_v2_grpc.py``; these are the cases no model there produces."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.errors import InvalidPayload
from modelyard.serving.v2 import grpc_predict_v2_pb2 as pb
from modelyard.serving.v2.grpc_contents import fill_response, request_tensors, requested_outputs
from modelyard.serving.v2.tensors import Tensor


def test_raw_inputs_are_little_endian_and_bytes_are_length_prefixed() -> None:
    numbers = np.array([[1, -2], [3, 400]], dtype="<i2")
    request = pb.ModelInferRequest(
        raw_input_contents=[numbers.tobytes(), b"\x02\0\0\0hi\0\0\0\0\x03\0\0\0abc"]
    )
    request.inputs.add(name="n", datatype="INT16", shape=[2, 2])
    text = request.inputs.add(name="t", datatype="BYTES", shape=[3])
    text.parameters["content_type"].string_param = "str"
    (n, t), raw = request_tensors(request)
    assert raw
    np.testing.assert_array_equal(np.asarray(n.data).reshape(2, 2), numbers)
    assert t.data == [b"hi", b"", b"abc"]
    assert t.parameters == {"content_type": "str"}


def test_typed_inputs_use_the_field_of_their_datatype() -> None:
    request = pb.ModelInferRequest()
    small = request.inputs.add(name="u", datatype="UINT8", shape=[3])
    small.contents.uint_contents.extend([0, 7, 255])
    flags = request.inputs.add(name="b", datatype="BOOL", shape=[2])
    flags.contents.bool_contents.extend([True, False])
    (u, b), raw = request_tensors(request)
    assert not raw
    assert np.asarray(u.data).dtype == np.uint8 and np.asarray(u.data).tolist() == [0, 7, 255]
    assert np.asarray(b.data).tolist() == [True, False]


def _fp16_typed() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest()
    request.inputs.add(name="h", datatype="FP16", shape=[1])
    return request


def _uint8_out_of_range() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest()
    request.inputs.add(name="u", datatype="UINT8", shape=[1]).contents.uint_contents.append(300)
    return request


def _raw_entry_per_input() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(raw_input_contents=[b"\0" * 4, b"\0" * 4])
    request.inputs.add(name="a", datatype="FP32", shape=[1])
    return request


def _bytes_length_past_the_end() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(raw_input_contents=[b"\x09\0\0\0abc"])
    request.inputs.add(name="t", datatype="BYTES", shape=[1])
    return request


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (_fp16_typed(), "raw_input_contents"),
        (_uint8_out_of_range(), "range"),
        (_raw_entry_per_input(), "2 entries for 1 inputs"),
        (_bytes_length_past_the_end(), "9 bytes"),
    ],
)
def test_malformed_inputs_name_the_problem(request_: pb.ModelInferRequest, words: str) -> None:
    with pytest.raises(InvalidPayload, match=words):
        request_tensors(request_)


def test_answers_are_typed_unless_asked_raw_or_fp16() -> None:
    scores = Tensor("output-0", "FP32", (2,), np.array([0.25, 0.5], dtype=np.float32))
    labels = Tensor("labels", "BYTES", (2,), [b"yes", b"no"], {"batched": True})
    typed = pb.ModelInferResponse()
    fill_response(typed, [scores, labels], raw=False)
    assert not typed.raw_output_contents
    assert list(typed.outputs[0].contents.fp32_contents) == [0.25, 0.5]
    assert list(typed.outputs[1].contents.bytes_contents) == [b"yes", b"no"]
    assert typed.outputs[1].parameters["batched"].bool_param is True

    raw = pb.ModelInferResponse()
    fill_response(raw, [scores, labels], raw=True)
    assert raw.raw_output_contents[0] == np.array([0.25, 0.5], dtype="<f4").tobytes()
    assert raw.raw_output_contents[1] == b"\x03\0\0\0yes\x02\0\0\0no"
    assert not raw.outputs[0].HasField("contents")

    half = Tensor("output-0", "FP16", (1,), np.array([1.5], dtype=np.float16))
    forced = pb.ModelInferResponse()
    fill_response(forced, [half, labels], raw=False)  # FP16 has no typed field
    assert len(forced.raw_output_contents) == 2
    assert not forced.outputs[1].HasField("contents")


def test_extensions_this_server_lacks_are_refused_over_grpc_as_over_rest() -> None:
    """tritonclient's ``class_count`` (the classification extension) and shared-memory
    regions were ignored over gRPC: the caller got raw values it had not asked for."""
    request = pb.ModelInferRequest(model_name="m")
    tensor = request.inputs.add(name="x", datatype="FP64", shape=[1, 2])
    tensor.contents.fp64_contents.extend([1.0, 2.0])
    assert requested_outputs(request) is None
    wanted = request.outputs.add(name="output-0")
    assert requested_outputs(request) == ["output-0"]
    wanted.parameters["classification"].int64_param = 2
    with pytest.raises(InvalidPayload, match="output 'output-0': the classification extension"):
        requested_outputs(request)
    del wanted.parameters["classification"]
    wanted.parameters["shared_memory_region"].string_param = "out0"
    with pytest.raises(InvalidPayload, match="output 'output-0': the shared-memory extension"):
        requested_outputs(request)
    tensor.parameters["shared_memory_region"].string_param = "in0"
    with pytest.raises(InvalidPayload, match="input 'x': the shared-memory extension"):
        request_tensors(request)
    request.raw_input_contents.append(np.array([1.0, 2.0]).tobytes())
    tensor.contents.ClearField("fp64_contents")
    with pytest.raises(InvalidPayload, match="input 'x': the shared-memory extension"):
        request_tensors(request)
