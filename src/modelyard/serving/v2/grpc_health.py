"""The gRPC health checking protocol (``grpc.health.v1.Health``) on the V2 gRPC port.

Kubernetes' ``grpc`` probes, ``grpc_health_probe`` and load balancers ask this service, not
``inference.GRPCInferenceService/ServerReady``, whether a gRPC server takes traffic; Triton
answers it too. The answer is the V2 ``ServerReady`` one (``catalog.server_ready``: every
endpoint's models loaded here), for the whole server (``""``) and for the inference service
by its name; any other service name is NOT_FOUND, as the protocol says.

``Check`` reads readiness when asked. ``Watch`` sends the status at once and then each change,
read every ``WATCH_POLL_S``: readiness moves with model loads and route-table swaps, which have
no event of their own to wait on, and a poll that reads a few attributes costs nothing next to a
watcher's stream. The messages and stubs are the ``grpcio-health-checking`` package's (the gRPC
project's own); the servicer is ours because its status is computed, not set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelyard.codecs.json_shapes import clip
from modelyard.serving.v2.grpc_handlers import Malformed, lenient_deserializer

#: The service names Check and Watch know: the whole server, and the V2 inference service.
SERVICES = ("", "inference.GRPCInferenceService")
#: The health service's full name, as grpc_health's generated code registers it.
_SERVICE = "grpc.health.v1.Health"
#: How often Watch reads readiness again, in seconds.
WATCH_POLL_S = 0.5

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_UNKNOWN_SERVICE = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer(health_pb2_grpc.HealthServicer):
    """``grpc.health.v1.Health`` answering from ``ready()`` (see the module)."""

    def __init__(self, ready: Callable[[], bool], poll_s: float = WATCH_POLL_S) -> None:
        self._ready = ready
        self._poll_s = poll_s

    def _status(self) -> Any:
        return _SERVING if self._ready() else _NOT_SERVING

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in SERVICES:
            # The name clipped: echoed whole, a long one passed the caller's metadata limit,
            # which then saw RESOURCE_EXHAUSTED instead of NOT_FOUND.
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"unknown service {clip(request.service)}"
            )
        return health_pb2.HealthCheckResponse(status=self._status())

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        # The protocol: an unknown service is SERVICE_UNKNOWN on the stream, not an error,
        # since it may be registered later (here it never is).
        sent = None
        while True:
            status = self._status() if request.service in SERVICES else _UNKNOWN_SERVICE
            if status != sent:
                yield health_pb2.HealthCheckResponse(status=status)
                sent = status
            await asyncio.sleep(self._poll_s)


def add_health(servicer: HealthServicer, server: grpc.aio.Server) -> None:
    """Serve ``servicer`` as ``grpc.health.v1.Health`` on ``server``: as the generated
    ``add_HealthServicer_to_server`` does, but with request bytes that do not parse answered
    ``INVALID_ARGUMENT`` (grpc answers a deserializer's DecodeError ``UNKNOWN``)."""
    deserialize = lenient_deserializer(health_pb2.HealthCheckRequest)
    serialize = health_pb2.HealthCheckResponse.SerializeToString

    async def check(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if type(request) is Malformed:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        return await servicer.Check(request, context)

    async def watch(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if type(request) is Malformed:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        async for answer in servicer.Watch(request, context):
            yield answer

    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=deserialize, response_serializer=serialize
        ),
        "Watch": grpc.unary_stream_rpc_method_handler(
            watch, request_deserializer=deserialize, response_serializer=serialize
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    server.add_registered_method_handlers(_SERVICE, handlers)
