"""Open Inference Protocol V2 tensors, protocol-neutral: the codec the REST and gRPC adapters
share.

An adapter turns its wire message into :class:`Tensor` objects (:meth:`Tensor.from_values` for
JSON-style data, :meth:`Tensor.from_raw` for raw little-endian bytes), then:

    check_requested(requested_names)                      # before the model's time is spent
    rows = rows_from_tensors(inputs, lease.signature)     # what lease.predict takes
    outputs = output_tensors(predictions, lease.signature, requested_names)
    metadata = model_metadata(endpoint_name, spec, versions)  # the V2 JSON shape

Inputs: one ``[n, k]`` tensor, or one ``[n]`` tensor per named feature (:mod:`.rows` says
exactly what is accepted). :func:`model_metadata` describes a model with numeric features as
the one tensor ``input-0`` ``[-1, k]`` (datatype: the features' common one, else FP64), and a
model with a text feature as one tensor per feature, each ``[-1]`` (text ones BYTES).

Outputs: every model answers with one tensor, ``output-0``: its predictions as they are
(shape ``[n]`` or ``[n, m]``; datatype from their dtype, text labels as BYTES).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.codecs.float_text import float16_for_json
from modelyard.codecs.json_shapes import clip
from modelyard.codecs.object_arrays import typed_objects
from modelyard.domain import ModelSpec, Signature
from modelyard.errors import InvalidPayload, ModelFailed
from modelyard.serving.v2.datatypes import (
    BYTES,
    DATATYPES,
    datatype_of,
    is_text_dtype,
    numpy_dtype,
)
from modelyard.serving.v2.elements import (
    Elements,
    raw_from_elements,
    raw_to_elements,
    shape_of,
    values_to_elements,
)
from modelyard.serving.v2.rows import layout, rows_from_tensors

__all__ = [
    "DATATYPES",
    "INPUT",
    "OUTPUT",
    "Tensor",
    "check_requested",
    "datatype_of",
    "is_text_dtype",
    "model_metadata",
    "numpy_dtype",
    "output_tensors",
    "rows_from_tensors",
]

#: The name the single ``[n, k]`` input tensor is described with.
INPUT = "input-0"
#: The name of the one output tensor every model answers with.
OUTPUT = "output-0"


@dataclass(slots=True)
class Tensor:
    """One V2 tensor, whatever the wire.

    Attributes:
        name: The tensor's name.
        datatype: One of :data:`DATATYPES`.
        shape: Its dimensions (no -1 in a request or response tensor).
        data: Exactly ``prod(shape)`` elements, row-major: a numpy array of the datatype's
            dtype (flat or in ``shape``) for the numeric datatypes, a flat list of ``bytes``
            for BYTES.
        parameters: The tensor's protocol parameters, as sent (``binary_data_size`` …).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: Elements
    parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_values(
        cls,
        name: str,
        datatype: str,
        shape: Sequence[int],
        values: Any,
        parameters: Mapping[str, Any] | None = None,
        *,
        booleans: bool = True,
    ) -> Tensor:
        """A tensor from JSON-style values, nested in ``shape`` or flat, row-major.

        ``booleans`` False: the caller knows ``values`` hold no ``true``/``false`` (see
        :func:`.values_to_elements`), which spares a pass over them.

        Raises:
            InvalidPayload: unknown datatype, malformed shape, a count other than the shape's,
                or a value that is not of the datatype (the message names the tensor).
        """
        dims = shape_of(shape, name)
        data = values_to_elements(datatype, dims, values, name, booleans=booleans)
        return cls(name, datatype, dims, data, dict(parameters) if parameters else {})

    @classmethod
    def from_raw(
        cls,
        name: str,
        datatype: str,
        shape: Sequence[int],
        raw: bytes | memoryview,
        parameters: Mapping[str, Any] | None = None,
    ) -> Tensor:
        """A tensor from raw little-endian, row-major bytes (the binary tensor data extension;
        gRPC ``raw_input_contents``): BOOL one byte an element, BYTES length-prefixed.

        Raises:
            InvalidPayload: unknown datatype, malformed shape, or a size that does not fit.
        """
        dims = shape_of(shape, name)
        data = raw_to_elements(datatype, dims, raw, name)
        return cls(name, datatype, dims, data, dict(parameters) if parameters else {})

    def raw(self) -> bytes:
        """The elements as raw little-endian, row-major bytes (the inverse of :meth:`from_raw`)."""
        return raw_from_elements(self.datatype, self.data)

    def values(self) -> Any:
        """The elements as a flat JSON-able sequence: a numpy array (orjson writes it with
        ``OPT_SERIALIZE_NUMPY``; NaN as null) or, for BYTES, a list of str.

        Raises:
            InvalidPayload: a BYTES element that is not UTF-8 (JSON cannot carry it: ask for
                the tensor as binary data).
        """
        if self.datatype != BYTES:
            assert isinstance(self.data, np.ndarray)
            flat = np.ascontiguousarray(self.data.reshape(-1))
            return float16_for_json(flat) if flat.dtype == np.float16 else flat
        try:
            return [item.decode("utf-8") for item in self.data]
        except UnicodeDecodeError:
            raise InvalidPayload(
                f"output {clip(self.name)} holds bytes that are not UTF-8 text, which JSON "
                "cannot carry: request it as binary data"
            ) from None


# --- outputs -------------------------------------------------------------------------------


def check_requested(requested: Sequence[str] | None) -> None:
    """Refuse requested output names the models do not produce (before predicting).

    Raises:
        InvalidPayload: an unknown output name, or one asked for twice.
    """
    if requested:
        seen: set[str] = set()
        for name in requested:
            if name != OUTPUT:
                raise InvalidPayload(
                    f"unknown output {clip(name)}: the model's output is {OUTPUT!r}"
                )
            if name in seen:
                raise InvalidPayload(f"output {clip(name)} is requested twice")
            seen.add(name)


def output_tensors(
    predictions: np.ndarray, signature: Signature | None, requested: Sequence[str] | None
) -> list[Tensor]:
    """The response tensors for a model's predictions.

    Args:
        predictions: What ``lease.predict`` returned (first dimension: the rows).
        signature: The answering model's signature (kept for output naming; today every
            model answers with the one tensor :data:`OUTPUT`).
        requested: The output names the request asked for; None or empty: all of them.

    Returns:
        ``[Tensor(OUTPUT, ...)]`` holding the predictions: datatype from their dtype (text
        labels as BYTES), shape as they are.

    Raises:
        InvalidPayload: an unknown requested output.
        ModelFailed: predictions of a kind no V2 datatype carries (complex, dates, objects
            that are neither numbers nor text), or text UTF-8 cannot encode (a lone
            surrogate, as ``surrogateescape`` decoding leaves).
    """
    check_requested(requested)
    array = np.asarray(predictions)
    if array.ndim == 0:
        array = array.reshape(1)
    datatype = datatype_of(array.dtype)
    if datatype == BYTES and array.dtype.kind == "O":
        datatype, array = _objects(array)
    if datatype is None:
        raise ModelFailed(f"the model's predictions of dtype {array.dtype} have no V2 datatype")
    shape = tuple(int(d) for d in array.shape)
    if datatype == BYTES:
        data: Elements = [_as_bytes(v) for v in array.reshape(-1).tolist()]
    else:
        data = np.ascontiguousarray(array, dtype=numpy_dtype(datatype)).reshape(-1)
    return [Tensor(OUTPUT, datatype, shape, data)]


def _objects(array: np.ndarray) -> tuple[str | None, np.ndarray]:
    """An object array's V2 datatype and values (``codecs.object_arrays``: text, BOOL,
    INT64 or UINT64 kept exactly, else numbers with None as NaN); None when it has none."""
    found = typed_objects(array)
    if found is None:
        return None, array
    kind, typed = found
    return _OBJECT_DATATYPES[kind], typed


_OBJECT_DATATYPES = {
    "text": BYTES, "bool": "BOOL", "int64": "INT64", "uint64": "UINT64", "float64": "FP64",
}  # fmt: skip


def _as_bytes(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    try:
        return str(value).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8 for it, over any wire
        raise ModelFailed(
            f"the model's predictions hold text UTF-8 cannot encode ({exc.reason}: "
            f"{exc.object[exc.start : exc.end]!a})"
        ) from None


# --- metadata ------------------------------------------------------------------------------


def model_metadata(
    endpoint_name: str, spec: ModelSpec, versions: Sequence[str] | None = None
) -> dict[str, Any]:
    """The V2 model metadata of an endpoint answered by ``spec`` (REST JSON shape; the gRPC
    adapter converts it to ``ModelMetadataResponse``).

    Args:
        endpoint_name: The V2 model name (an endpoint).
        spec: The model version that describes it.
        versions: The versions a request may name; default: ``spec``'s version number.

    Returns:
        ``{"name", "versions", "platform" (the flavor), "inputs", "outputs"}``, each tensor
        ``{"name", "datatype", "shape"}`` with -1 for variable dimensions.
    """
    return {
        "name": endpoint_name,
        "versions": list(versions) if versions is not None else [str(spec.version)],
        "platform": spec.flavor,
        "inputs": _input_metadata(spec.signature),
        "outputs": _output_metadata(spec.signature),
    }


def _input_metadata(signature: Signature | None) -> list[dict[str, Any]]:
    features = layout(signature)
    if signature is None or features.width is None:
        return [{"name": INPUT, "datatype": "FP64", "shape": [-1, -1]}]
    if features.any_text and features.names is not None:
        return [
            {"name": name, "datatype": datatype_of(column.dtype) or "FP64", "shape": [-1]}
            for name, column in zip(features.names, signature.inputs, strict=True)
        ]
    kinds = {datatype_of(column.dtype) for column in signature.inputs}
    datatype = kinds.pop() if len(kinds) == 1 else None
    return [{"name": INPUT, "datatype": datatype or "FP64", "shape": [-1, features.width]}]


def _output_metadata(signature: Signature | None) -> list[dict[str, Any]]:
    datatype = None
    shape: list[int] = [-1]
    if signature is not None:
        if signature.outputs:
            datatype = datatype_of(signature.outputs[0].dtype)
        shape = [int(d) for d in signature.output_shape]
    return [{"name": OUTPUT, "datatype": datatype or "FP64", "shape": shape}]
