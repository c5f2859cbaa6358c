"""The V2 gRPC server of one serving worker: a companion of the HTTP app (``app.Companion``).

``modelyard serve --grpc-port N`` runs it in every uvicorn worker, in the worker's own event
loop, beside the HTTP routes and on the same inference core, so both protocols share the loaded
models, the micro-batchers and the route table swaps. The workers all bind ``host:N``: gRPC
sets ``SO_REUSEPORT`` on Linux (the ``grpc.so_reuseport`` channel argument, on by default), and
the kernel spreads new connections across them as it does for the HTTP port. grpc.aio runs on
uvicorn's uvloop loop as it does on asyncio's (the e2e tests serve through it).

This module imports grpc: it is imported only when a gRPC port is set.
"""

from __future__ import annotations

import logging
import os

import grpc

from modelyard.errors import CannotListen
from modelyard.serving.app import ServerOptions
from modelyard.serving.dataplane import DataPlane
from modelyard.serving.v2 import catalog
from modelyard.serving.v2.grpc_handlers import add_to_server
from modelyard.serving.v2.grpc_health import HealthServicer, add_health
from modelyard.serving.v2.grpc_service import InferenceServicer

log = logging.getLogger("modelyard.serving")

#: How long calls in flight may take to finish at shutdown (uvicorn allows 10 s in all).
GRACE_S = 5.0
#: The largest message gRPC carries: its length limits are C ints (a larger one is an
#: OverflowError when the server is made), and protobuf's own messages stop at 2 GiB.
GRPC_MAX_MESSAGE = 2**31 - 1


class GrpcServer:
    """Serves ``inference.GRPCInferenceService`` and the gRPC health checking protocol
    (``grpc_health``) on ``host:port`` while the worker runs."""

    def __init__(self, core: DataPlane, options: ServerOptions, host: str, port: int) -> None:
        self._core = core
        self._options = options
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            CannotListen: the address cannot be bound.
        """
        # A payload limit past what gRPC can carry (--max-payload-mb 4096) is no limit below it.
        limit = min(self._options.max_payload_bytes, GRPC_MAX_MESSAGE)
        server = grpc.aio.server(
            options=[
                # A message over the limit is refused with RESOURCE_EXHAUSTED before it is read.
                ("grpc.max_receive_message_length", limit),
                ("grpc.so_reuseport", 1),  # every worker binds the same port
            ]
        )
        add_to_server(InferenceServicer(self._core, str(os.getpid())), server)
        add_health(HealthServicer(lambda: catalog.server_ready(self._core)), server)
        try:
            server.add_insecure_port(self._address)
        except RuntimeError as exc:  # grpc's only word for "cannot bind"
            raise CannotListen(f"cannot listen for gRPC on {self._address}: {exc}") from None
        await server.start()
        self._server = server
        log.info("serving the V2 gRPC protocol on %s", self._address)

    async def stop(self) -> None:
        """Stop accepting calls and let those in flight finish (for up to ``GRACE_S``)."""
        if self._server is not None:
            await self._server.stop(GRACE_S)
            self._server = None
