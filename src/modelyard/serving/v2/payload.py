"""The REST ``/infer`` request and response bodies: V2 JSON, with binary tensor data.

Request (the protocol's ``$inference_request``)::

    {"id": "42",                                   # optional, echoed
     "parameters": {"binary_data_output": true},   # optional; others are accepted and ignored
     "inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP64",
                 "data": [[1, 2, 3], [4, 5, 6]]}], # nested or flat, row-major
     "outputs": [{"name": "output-0", "parameters": {"binary_data": true}}]}   # optional

An input carries ``data`` or ``parameters.binary_data_size`` (its bytes follow the JSON; see
:mod:`.binary`), never both. Triton's shared-memory and classification parameters are refused,
as this server does not implement those extensions.

Response (``$inference_response``): ``{"model_name", "model_version", "id"?, "outputs"}``, each
output ``{"name", "datatype", "shape", "data"}`` with data flat, or, as binary,
``"parameters": {"binary_data_size": N}`` and its bytes after the JSON.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelyard.codecs.json_shapes import clip, not_utf8
from modelyard.errors import InvalidPayload
from modelyard.serving.v2 import binary
from modelyard.serving.v2.tensors import Tensor

__all__ = ["InferRequest", "encode_response", "parse_request", "refuse_unsupported"]

_UNSUPPORTED = {
    "shared_memory_region": "the shared-memory extension is not supported: send the data",
    "classification": "the classification extension is not supported",
}


@dataclass(slots=True)
class InferRequest:
    """A parsed inference request.

    Attributes:
        id: The request's ``id``, echoed in the response.
        inputs: The input tensors, in request order.
        outputs: The requested output names; None: all.
        binary_outputs: Per requested output, its ``binary_data`` setting, where given.
        binary_default: The request's ``binary_data_output``.
    """

    id: str | None
    inputs: list[Tensor]
    outputs: list[str] | None = None
    binary_outputs: dict[str, bool] = field(default_factory=dict)
    binary_default: bool = False

    def wants_binary(self, name: str) -> bool:
        """Whether output ``name`` goes back as binary data."""
        return self.binary_outputs.get(name, self.binary_default)


def parse_request(body: bytes, header_length: str | None) -> InferRequest:
    """Parse an inference request body.

    Args:
        body: The whole request body.
        header_length: Its ``Inference-Header-Content-Length`` header, if any.

    Raises:
        InvalidPayload: malformed JSON, a missing or mistyped field, an unknown datatype, a
            shape that does not fit the data, binary sizes that do not fit the body.
    """
    text, blobs = binary.split(body, header_length)
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        utf8 = not_utf8(text, exc)
        problem = f"malformed JSON: {exc}" if utf8 is None else f"not UTF-8 text: {utf8}"
        if header_length is None and b'"binary_data_size"' in body:
            # Binary tensor data sent without the header that says where the JSON ends: the
            # whole body was read as JSON, and failed at the first raw byte.
            raise InvalidPayload(
                f"an input has binary_data_size but the request has no {binary.HEADER_NAME}, "
                "so the whole body was read as JSON: send the JSON object's length in that "
                f"header ({problem})"
            ) from None
        where = f" (the JSON object's length is {binary.HEADER_NAME})" if header_length else ""
        if utf8 is not None:
            raise InvalidPayload(f"the JSON object{where} is {problem}") from None
        raise InvalidPayload(f"malformed JSON{where}: {exc}") from None
    if type(obj) is not dict:
        raise InvalidPayload("the inference request must be a JSON object")
    request_id = obj.get("id")
    if request_id is not None and type(request_id) is not str:
        raise InvalidPayload('"id" must be a string')
    parameters = _parameters(obj.get("parameters"), None)
    items = obj.get("inputs")
    if type(items) is not list or not items:
        raise InvalidPayload('"inputs" must be a non-empty list of tensors')
    # JSON writes true and false as bare words: with no more of them in the body than the
    # parameters' flags (the common "binary_data_output": true), no tensor's data holds one,
    # and the pass over every value that looks for them is saved.
    words = body.count(b"true") + body.count(b"false")
    booleans = words > 0 and words > _flags(obj)
    inputs = [_input(item, i, blobs, booleans) for i, item in enumerate(items)]
    blobs.finish()
    request = InferRequest(request_id, inputs)
    if parameters:
        request.binary_default = _flag(parameters, "binary_data_output", "the request")
    wanted = obj.get("outputs")
    if wanted is not None:
        if type(wanted) is not list:
            raise InvalidPayload('"outputs" must be a list')
        request.outputs = []
        for i, item in enumerate(wanted):
            name = _name(item, f"output {i + 1}")
            params = _parameters(item.get("parameters"), name, "output")
            if "binary_data" in params:
                flag = _flag(params, "binary_data", _where(name, "output"))
                request.binary_outputs[name] = flag
            request.outputs.append(name)
    return request


def _flags(obj: dict[str, Any]) -> int:
    """How many booleans the request's, its inputs' and its outputs' parameters hold."""
    holders = [obj]
    for key in ("inputs", "outputs"):
        if type(obj.get(key)) is list:
            holders.extend(obj[key])
    flags = 0
    for holder in holders:
        params = holder.get("parameters") if type(holder) is dict else None
        if type(params) is dict:
            flags += sum(type(v) is bool for v in params.values())
    return flags


def _input(item: Any, index: int, blobs: binary.BinaryData, booleans: bool) -> Tensor:
    name = _name(item, f"input {index + 1}")
    datatype = item.get("datatype")
    if type(datatype) is not str:
        raise InvalidPayload(f'{_where(name)}: "datatype" must be a string')
    shape = item.get("shape")
    params = item.get("parameters")
    if params is not None:
        params = _parameters(params, name)
        if "binary_data_size" in params:
            if "data" in item:
                raise InvalidPayload(f'{_where(name)}: give "data" or binary_data_size, not both')
            raw = blobs.take(params["binary_data_size"], _where(name))
            return Tensor.from_raw(name, datatype, shape, raw, params)
    data = item.get("data")
    if data is None:
        raise InvalidPayload(f'{_where(name)} has no "data"')
    return Tensor.from_values(name, datatype, shape, data, params, booleans=booleans)


def _where(name: str, kind: str = "input") -> str:
    return f"{kind} {clip(name)}"


def _name(item: Any, what: str) -> str:
    if type(item) is not dict:
        raise InvalidPayload(f"{what} must be a JSON object")
    name = item.get("name")
    if type(name) is not str:
        raise InvalidPayload(f'{what}: "name" must be a string')
    return name


def _parameters(value: Any, name: str | None, kind: str = "input") -> dict[str, Any]:
    """A tensor's (or, for ``name`` None, the request's) parameters, checked."""
    what = "the request" if name is None else _where(name, kind)
    if value is None:
        return {}
    if type(value) is not dict:
        raise InvalidPayload(f'{what}: "parameters" must be a JSON object')
    refuse_unsupported(value, what)
    return value


def refuse_unsupported(parameters: Collection[str], what: str) -> None:
    """Refuse the parameters of extensions this server does not implement (shared memory,
    classification), over REST and gRPC alike: ignored, they would give the caller data it did
    not ask for.

    Raises:
        InvalidPayload: naming ``what`` (the tensor) and the extension.
    """
    for key, message in _UNSUPPORTED.items():
        if key in parameters:
            raise InvalidPayload(f"{what}: {message}")


def _flag(parameters: dict[str, Any], key: str, what: str) -> bool:
    value = parameters.get(key, False)
    if type(value) is not bool:
        raise InvalidPayload(f"{what}: the {key} parameter must be true or false")
    return value


def encode_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    outputs: list[Tensor],
) -> tuple[bytes, int | None]:
    """The response body for ``outputs``.

    Returns:
        The body, and the JSON object's length when binary outputs follow it (the
        ``Inference-Header-Content-Length`` to send), else None.

    Raises:
        InvalidPayload: a BYTES output that is not UTF-8, asked for as JSON.
    """
    items: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for tensor in outputs:
        item: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
        }
        if request.wants_binary(tensor.name):
            raw = tensor.raw()
            item["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            item["data"] = tensor.values()
        items.append(item)
    answer: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        answer["id"] = request.id
    answer["outputs"] = items
    header = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    return binary.frame(header, blobs), len(header) if blobs else None
