"""``inference.GRPCInferenceService``: the Open Inference Protocol V2 over gRPC, on the core.

A V2 "model" is an endpoint. ``model_version`` empty routes by the endpoint's traffic split;
otherwise it names a variant or a served model version number (``DataPlane.version``). Health
and metadata answer what V2 REST answers (``catalog.py``). Every answer to ModelInfer names, in
its trailing metadata, the variant and model version that answered, the inference id and the
worker process (``x-modelyard-*``, as the HTTP routes' headers do), and carries the number of
the version that answered in ``model_version``.

Errors become status codes in one function, :func:`status_of`:

===============================================  =====================
error                                            status
===============================================  =====================
bad input: tensors, shape, datatype, signature,  ``INVALID_ARGUMENT``
request bytes that are not a protobuf message
(``grpc_handlers``)
unknown model (endpoint) or version              ``NOT_FOUND``
deployed but not loaded here; store unavailable  ``UNAVAILABLE``
over the payload limit                           ``RESOURCE_EXHAUSTED``
the model raised (message has the inference id)  ``INTERNAL``
===============================================  =====================

ModelReady answers an unknown model or version with ``ready: false``, not ``NOT_FOUND``
(Triton's answer; over REST the 404 is the protocol's "false").

A message over the payload limit never reaches this module: the server's maximum receive
length refuses it (with ``RESOURCE_EXHAUSTED``) before it is read whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

import grpc

from modelyard.domain.inference_ids import new_inference_id
from modelyard.errors import (
    InvalidInput,
    InvalidPayload,
    ModelyardError,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
    UnsupportedMediaType,
    shorten,
)
from modelyard.serving.dataplane import DataPlane
from modelyard.serving.http import typed_error
from modelyard.serving.stack import RequestMeta
from modelyard.serving.v2 import catalog
from modelyard.serving.v2 import grpc_predict_v2_pb2 as pb
from modelyard.serving.v2 import grpc_predict_v2_pb2_grpc as pb_grpc
from modelyard.serving.v2.grpc_contents import fill_response, request_tensors, requested_outputs
from modelyard.serving.v2.tensors import check_requested, output_tensors, rows_from_tensors

Metadata = list[tuple[str, str]]
_ROUTING_KEY = "x-modelyard-routing-key"


def status_of(exc: ModelyardError) -> grpc.StatusCode:
    """The gRPC status code that answers ``exc`` (the table in this module's docstring)."""
    if isinstance(exc, PayloadTooLarge):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, InvalidInput | UnsupportedMediaType | NotAcceptable):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, StorageUnavailable):  # ModelNotReady among them
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL  # ModelFailed, and anything unforeseen


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The six rpcs of the V2 service over one server process's inference core."""

    def __init__(self, core: DataPlane, worker: str) -> None:
        self._core = core
        self.worker = ("x-modelyard-worker", worker)
        self._server = pb.ServerMetadataResponse(**catalog.server_metadata(()))

    # -- health -------------------------------------------------------------------------------

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=catalog.server_ready(self._core))

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelReadyResponse:
        """Ready when the endpoint (and the version asked for) is loaded here. An unknown
        endpoint or version is not ready (``ready: false``), as Triton answers and as Triton's
        client reads the REST route's 404: a caller polling until a model is deployed gets
        false, not an error."""
        try:
            ready = catalog.model_ready(self._core, request.name, request.version or None)
        except NotFound:
            ready = False
        except ModelyardError as exc:
            await abort(context, exc, [self.worker])
        return pb.ModelReadyResponse(ready=ready)

    # -- metadata -----------------------------------------------------------------------------

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerMetadataResponse:
        return self._server

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelMetadataResponse:
        """The inputs and outputs of the version asked for; with none, of the variant with the
        largest traffic share (``catalog.describe``)."""
        try:
            described = catalog.describe(self._core, request.name, request.version or None)
        except ModelyardError as exc:
            await abort(context, exc, [self.worker])
        return pb.ModelMetadataResponse(
            name=described["name"],
            versions=described["versions"],
            platform=described["platform"],
            inputs=[_tensor_metadata(t) for t in described["inputs"]],
            outputs=[_tensor_metadata(t) for t in described["outputs"]],
        )

    # -- inference ----------------------------------------------------------------------------

    async def refuse_unreadable(
        self, rpc: str, message: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """Answer request bytes that are not the rpc's message: INVALID_ARGUMENT; an
        inference is counted as a request refused (with no endpoint: its name is unread)."""
        error = InvalidPayload(message)
        trailing: Metadata = [self.worker]
        if rpc == "ModelInfer":
            inference_id = new_inference_id()
            trailing.insert(0, ("x-modelyard-inference-id", inference_id))
            self._core.refuse(RequestMeta("", inference_id, protocol="v2-grpc"), error)
        await abort(context, error, trailing)

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelInferResponse:
        inference_id = new_inference_id()  # a UUIDv7: feedback finds it by its time
        trailing: Metadata = [("x-modelyard-inference-id", inference_id), self.worker]
        meta = RequestMeta(
            endpoint=request.model_name,
            inference_id=inference_id,
            target_version=request.model_version or None,
            routing_key=_routing_key(context.invocation_metadata()),
            protocol="v2-grpc",
        )
        response = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
        failure: ModelyardError | None = None
        try:
            with self._core.choose(meta) as lease:
                trailing.append(("x-modelyard-variant", lease.variant_name))
                trailing.append(("x-modelyard-model-version", lease.model_ref))
                lease.request_bytes = request.ByteSize()
                tensors, raw = request_tensors(request)
                requested = requested_outputs(request)
                check_requested(requested)  # before the model's time is spent
                rows = rows_from_tensors(tensors, lease.signature)
                predictions = await lease.predict(rows)
                outputs = output_tensors(predictions, lease.signature, requested)
                response.model_version = str(lease.model_version)
                fill_response(response, outputs, raw)
                lease.response_bytes = response.ByteSize()
        except Exception as raised:  # typed errors; a defect as one, its traceback logged
            failure = typed_error(raised, inference_id, request.model_name)
        if failure is not None:
            await abort(context, failure, trailing)
        context.set_trailing_metadata(trailing)
        return response


def _routing_key(metadata_: Iterable[tuple[str, Any]] | None) -> str | None:
    for key, value in metadata_ or ():
        if key == _ROUTING_KEY:
            return value if isinstance(value, str) else None
    return None


def _tensor_metadata(tensor: dict[str, Any]) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=tensor["name"], datatype=tensor["datatype"], shape=list(tensor["shape"])
    )


async def abort(
    context: grpc.aio.ServicerContext[Any, Any], exc: ModelyardError, trailing: Metadata
) -> NoReturn:
    """End the call with ``exc``'s status code and message (never returns)."""
    # abort takes its trailing metadata as a tuple only (a list is a TypeError: UNKNOWN).
    await context.abort(status_of(exc), shorten(exc.message), trailing_metadata=tuple(trailing))
