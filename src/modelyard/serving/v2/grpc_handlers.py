"""The method handlers of ``inference.GRPCInferenceService``, with request bytes that are not a
valid protobuf message answered ``INVALID_ARGUMENT``.

The generated ``add_GRPCInferenceServiceServicer_to_server`` deserializes with the message's
``FromString``; when that raises (``DecodeError``), grpc ends the call with ``UNKNOWN`` and the
exception's class name, before any code of ours runs. Here the deserializer keeps the failure
as a :class:`Malformed` value instead, and the servicer refuses it as :class:`InvalidPayload`
through its one error mapping (``grpc_service.status_of``), counting an inference among the
requests refused.

This module imports grpc: it is imported only when a gRPC port is set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from modelyard.serving.v2 import grpc_predict_v2_pb2 as pb
from modelyard.serving.v2.grpc_service import InferenceServicer

__all__ = ["SERVICE", "Malformed", "add_to_server", "lenient_deserializer"]

SERVICE = "inference.GRPCInferenceService"

#: rpc name -> (request type, response type), as in grpc_predict_v2.proto.
RPCS: dict[str, tuple[type[Message], type[Message]]] = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse),
}

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class Malformed:
    """Request bytes that did not parse as the rpc's message: what was wrong, to refuse."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def lenient_deserializer(request_type: type[Message]) -> Callable[[bytes], Message | Malformed]:
    """A request deserializer that keeps bytes which do not parse as ``request_type`` as a
    :class:`Malformed` value (for the rpc to refuse as ``INVALID_ARGUMENT``) instead of
    raising, which grpc answers ``UNKNOWN``."""
    kind = request_type.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Message | Malformed:
        try:
            return request_type.FromString(data)
        except DecodeError:
            return Malformed(f"the request bytes are not a valid {kind} protobuf message")

    return deserialize


def add_to_server(servicer: InferenceServicer, server: grpc.aio.Server) -> None:
    """Register ``servicer``'s six rpcs on ``server`` (as the generated function does, with
    deserializers that never raise)."""
    handlers = {
        name: _handler(servicer, name, request, response)
        for name, (request, response) in RPCS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


def _handler(
    servicer: InferenceServicer,
    rpc: str,
    request_type: type[Message],
    response_type: type[Message],
) -> grpc.RpcMethodHandler:
    behavior: Behavior = getattr(servicer, rpc)
    deserialize = lenient_deserializer(request_type)

    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if type(request) is Malformed:
            await servicer.refuse_unreadable(rpc, request.message, context)
        return await behavior(request, context)

    return grpc.unary_unary_rpc_method_handler(
        guarded,
        request_deserializer=deserialize,
        response_serializer=response_type.SerializeToString,
    )
