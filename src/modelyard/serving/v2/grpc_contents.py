"""V2 gRPC tensor data to and from the protocol-neutral :class:`Tensor`.

A ``ModelInferRequest`` carries each input's elements in one of two ways, never both:

- typed, in the input's ``contents``, in the repeated field of its datatype (``fp32_contents``
  for FP32, ``int_contents`` for INT8/16/32 …); FP16 has no such field;
- raw, in the request's ``raw_input_contents``: one entry per input, in the order of ``inputs``,
  the elements flattened row-major, little-endian, without padding; a BYTES element is a 4-byte
  little-endian length followed by its bytes. Triton's Python client sends raw by default.

The answer uses the form the request used (raw in, raw out), except that an FP16 output, which
has no typed field, makes the whole answer raw. The elements themselves are read and written by
:class:`Tensor`, as for V2 REST; this module knows only where gRPC puts them. Every malformed
input is :class:`~modelyard.errors.InvalidPayload`, naming the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelyard.codecs.json_shapes import clip
from modelyard.errors import InvalidPayload
from modelyard.serving.v2 import grpc_predict_v2_pb2 as pb
from modelyard.serving.v2.datatypes import BYTES, numpy_dtype
from modelyard.serving.v2.payload import refuse_unsupported
from modelyard.serving.v2.tensors import Tensor

#: datatype -> its InferTensorContents field (FP16 has none: it travels raw only).
_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    BYTES: "bytes_contents",
}
_FIELDS = frozenset(_FIELD.values())


def request_tensors(request: pb.ModelInferRequest) -> tuple[list[Tensor], bool]:
    """The inputs of ``request`` as tensors, and whether they came raw.

    Raises:
        InvalidPayload: no inputs, an unknown datatype, a bad shape, data that does not fill the
            shape, data in the wrong field, or raw and typed data mixed.
    """
    inputs = request.inputs
    if not inputs:
        raise InvalidPayload("the request has no inputs")
    raw = request.raw_input_contents
    if raw:
        if len(raw) != len(inputs):
            raise InvalidPayload(
                f"raw_input_contents has {len(raw)} entries for {len(inputs)} inputs; "
                "it needs one per input, in order"
            )
        return [_raw_input(tensor, data) for tensor, data in zip(inputs, raw, strict=True)], True
    return [_typed_input(tensor) for tensor in inputs], False


def _typed_input(tensor: pb.ModelInferRequest.InferInputTensor) -> Tensor:
    what = f"input {clip(tensor.name)}"
    datatype = tensor.datatype
    numpy_dtype(datatype)  # an unknown datatype is named before its field is looked for
    field = _FIELD.get(datatype)
    if field is None:
        raise InvalidPayload(f"{what} is {datatype}, which travels only in raw_input_contents")
    contents = tensor.contents
    stray = sorted(f for f in _FIELDS - {field} if len(getattr(contents, f)))
    if stray:
        raise InvalidPayload(
            f"{what} is {datatype}: its data belongs in contents.{field}, not {', '.join(stray)}"
        )
    values = list(getattr(contents, field))
    params = _parameters(tensor.parameters)
    refuse_unsupported(params, what)
    # Typed contents: only BOOL's field holds booleans.
    return Tensor.from_values(
        tensor.name, datatype, list(tensor.shape), values, params, booleans=False
    )


def _raw_input(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes) -> Tensor:
    if any(len(getattr(tensor.contents, f)) for f in _FIELDS):
        raise InvalidPayload(
            f"input {clip(tensor.name)} has contents while the request uses raw_input_contents; "
            "use one or the other"
        )
    params = _parameters(tensor.parameters)
    refuse_unsupported(params, f"input {clip(tensor.name)}")
    return Tensor.from_raw(tensor.name, tensor.datatype, list(tensor.shape), raw, params)


def requested_outputs(request: pb.ModelInferRequest) -> list[str] | None:
    """The names of the outputs ``request`` asks for (None: all of them).

    Raises:
        InvalidPayload: an output asking for an extension this server does not implement
            (classification, shared memory), as over REST.
    """
    for output in request.outputs:
        refuse_unsupported(output.parameters, f"output {clip(output.name)}")
    return [o.name for o in request.outputs] or None


def _parameters(params: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    return {
        key: getattr(value, value.WhichOneof("parameter_choice") or "string_param")
        for key, value in params.items()
    }


def fill_response(response: pb.ModelInferResponse, outputs: Sequence[Tensor], raw: bool) -> None:
    """Put ``outputs`` into ``response``: raw when ``raw`` (or an output is FP16), else typed."""
    raw = raw or any(t.datatype not in _FIELD for t in outputs)
    for tensor in outputs:
        out = response.outputs.add(name=tensor.name, datatype=tensor.datatype)
        out.shape.extend(int(d) for d in tensor.shape)
        for key, value in tensor.parameters.items():
            _set_parameter(out.parameters[key], value)
        if raw:
            response.raw_output_contents.append(tensor.raw())
        elif isinstance(tensor.data, np.ndarray):
            getattr(out.contents, _FIELD[tensor.datatype]).extend(tensor.data.ravel().tolist())
        else:
            out.contents.bytes_contents.extend(tensor.data)


def _set_parameter(param: pb.InferParameter, value: Any) -> None:
    if isinstance(value, bool):
        param.bool_param = value
    elif isinstance(value, int):
        param.int64_param = value
    else:
        param.string_param = str(value)
