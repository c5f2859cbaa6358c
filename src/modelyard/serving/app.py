"""The serving ASGI application: SageMaker-runtime compatible invocations and health checks.

Routes:
    POST /endpoints/{name}/invocations   predict (the SageMaker runtime API path)
    GET  /ping                           200 when every deployed model is loaded (SageMaker)
    GET  /healthz                        200 while the process runs (liveness)
    GET  /readyz                         200 when ready, else 503 with the reasons
    GET  /endpoints                      what this process serves, as JSON

Written as a plain ASGI callable: the invocation path is the product's hot path, and a
framework's routing and request objects cost more than this whole handler.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from modelyard.codecs import content_encoding, payloads
from modelyard.errors import (
    EndpointNotFound,
    InvalidInput,
    ModelFailed,
    ModelyardError,
    PayloadTooLarge,
    StorageUnavailable,
    VariantNotFound,
    shorten,
)
from modelyard.serving import handlers
from modelyard.serving.batching import ModelFailure
from modelyard.serving.deployer import Deployer
from modelyard.serving.routing import StickyByKey, WeightedRandom
from modelyard.serving.table import EndpointRoute, VariantRoute

log = logging.getLogger("modelyard.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_PREFIX = "/endpoints/"
_SUFFIX = "/invocations"
_JSON = b"application/json"


@dataclass(frozen=True)
class ServerOptions:
    """Per-server settings of the data plane."""

    max_payload_bytes: int = 6 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()


class ServingApp:
    """The ASGI app of one server process."""

    def __init__(self, deployer: Deployer, options: ServerOptions, policy: Any = None) -> None:
        self.deployer = deployer
        self.options = options
        self._policy = policy or StickyByKey(WeightedRandom())
        self._tasks: list[asyncio.Task[None]] = []
        # Names the worker process that answered, so that tests and operators can check that
        # every worker of a server converged instead of assuming it (built here: in the worker).
        self._worker = (b"x-modelyard-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan ----------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Load the plan before accepting connections: uvicorn opens the socket of a
                # worker only after startup, so no request meets a half-loaded worker.
                try:
                    await self.deployer.sync()
                except Exception:
                    log.exception("could not load the deployment plan at startup")
                self._tasks = [
                    asyncio.create_task(self.deployer.run()),
                    asyncio.create_task(self.deployer.drain_loop()),
                ]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                self.deployer.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- http --------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
            name = path[len(_PREFIX) : -len(_SUFFIX)]
            if method == "POST":
                await self._invoke(name, scope, receive, send)
            elif method == "OPTIONS":
                await self._preflight(scope, send)
            else:
                await _json(
                    send,
                    405,
                    {
                        "error": {
                            "code": "method_not_allowed",
                            "message": f"{method} not allowed; use POST",
                        }
                    },
                )
            return
        if method != "GET":
            await _json(send, 405 if path in _GET_ROUTES else 404, _not_found(path))
            return
        if path == "/ping":
            await _json(send, 200 if self.deployer.ready else 503, {"ready": self.deployer.ready})
        elif path == "/healthz":
            await _json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            ready = self.deployer.ready
            body = {
                "ready": ready,
                "revision": self.deployer.table.revision,
                "failures": self.deployer.failures,
            }
            await _json(send, 200 if ready else 503, body)
        elif path == "/endpoints":
            await _json(send, 200, self._describe())
        else:
            await _json(send, 404, _not_found(path))

    def _describe(self) -> dict[str, Any]:
        table = self.deployer.table
        return {
            "revision": table.revision,
            "endpoints": [
                {
                    "name": e.name,
                    "config": e.config_number,
                    "variants": [
                        {"name": v.name, "model": v.served.spec.ref, "weight": v.weight}
                        for v in e.variants.values()
                    ],
                }
                for e in table.endpoints.values()
            ],
            "failures": self.deployer.failures,
            "worker": os.getpid(),
        }

    async def _invoke(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        inference_id = os.urandom(16).hex()  # 128 random bits, like a uuid4, at half the cost
        headers = _headers(scope)
        extra = [
            (b"x-modelyard-inference-id", inference_id.encode()),
            self._worker,
            *self._cors(headers),
        ]
        try:
            route = self._endpoint(name)
            variant = self._variant(route, headers)
            extra.extend(variant.headers)
            served = variant.served
            handler = served.handler
            accept = headers.get("accept")
            if handler is None or handler.output_fn is None:
                media = payloads.negotiate(accept)  # 406 before reading the body
            body = await self._read_body(headers, receive)
            content_type = headers.get("content-type")
            if handler is not None and handler.input_fn is not None:
                rows = await handlers.run_input_fn(handler, body, content_type)
            else:
                rows = payloads.decode(body, content_type, served.spec.signature)
            served.inflight += 1
            try:
                predictions = await variant.batcher.predict(rows)
            finally:
                served.inflight -= 1
            if handler is not None and handler.output_fn is not None:
                payload, media = await handlers.run_output_fn(handler, predictions, accept)
            else:
                payload = payloads.encode(predictions, media)
        except ModelFailure as failure:
            log.error("inference %s on %s failed", inference_id, name, exc_info=failure.cause)
            error = ModelFailed(
                f"the model raised {type(failure.cause).__name__}; inference id {inference_id}"
            )
            await _error(send, error, inference_id, extra)
            return
        except ModelyardError as exc:
            await _error(send, exc, inference_id, extra)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", media.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _endpoint(self, name: str) -> EndpointRoute:
        route = self.deployer.table.endpoints.get(name)
        if route is not None:
            return route
        if name in self.deployer.failures:
            raise StorageUnavailable(
                f"endpoint {name!r} is not being served: {self.deployer.failures[name]}"
            )
        raise EndpointNotFound(f"endpoint {name!r} is not deployed")

    def _variant(self, route: EndpointRoute, headers: dict[str, str]) -> VariantRoute:
        target = headers.get("x-amzn-sagemaker-target-variant") or headers.get(
            "x-modelyard-target-variant"
        )
        if target is not None:
            variant = route.variants.get(target)
            if variant is None:
                raise VariantNotFound(
                    f"endpoint {route.name!r} has no variant {target!r}; "
                    f"its variants: {', '.join(route.variants)}"
                )
            return variant
        chosen: VariantRoute = self._policy.choose(
            route.choice, headers.get("x-modelyard-routing-key")
        )
        return chosen

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.options.max_payload_bytes
        encoding = headers.get("content-encoding")
        # An unknown coding is a 415 before the body is read; gzip is undone once it is read.
        codings = content_encoding.codings(encoding) if encoding is not None else ()
        declared = headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise InvalidInput(f"malformed Content-Length {declared!r}") from None
            if size > limit:
                raise PayloadTooLarge(_too_large(size, limit))
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise InvalidInput("the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:  # chunked upload: stop reading as soon as it is too big
                raise PayloadTooLarge(_too_large(total, limit, at_least=True))
            chunks.append(chunk)
            if not message.get("more_body", False):
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                return content_encoding.inflate(body, codings, limit) if codings else body

    def _cors(self, headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
        origin = headers.get("origin")
        allowed = self.options.cors_origins
        if origin is None or not allowed or (origin not in allowed and "*" not in allowed):
            return []
        return [
            (b"access-control-allow-origin", origin.encode()),
            (b"vary", b"Origin"),
            (
                b"access-control-expose-headers",
                b"x-modelyard-variant, x-modelyard-model-version, x-modelyard-inference-id, "
                b"x-amzn-invoked-production-variant",
            ),
        ]

    async def _preflight(self, scope: Scope, send: Send) -> None:
        cors = self._cors(_headers(scope))
        if not cors:
            await _json(
                send,
                403,
                {"error": {"code": "cors_refused", "message": "origin not in the CORS allow-list"}},
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    *cors,
                    (b"access-control-allow-methods", b"POST, OPTIONS"),
                    (
                        b"access-control-allow-headers",
                        b"content-type, accept, x-modelyard-routing-key, "
                        b"x-modelyard-target-variant",
                    ),
                    (b"access-control-max-age", b"600"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


_GET_ROUTES = {"/ping", "/healthz", "/readyz", "/endpoints"}


# The request headers the data plane reads; the rest (SigV4's among them) are never decoded.
_WANTED = frozenset(
    {
        b"accept",
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"origin",
        b"x-amzn-sagemaker-target-variant",
        b"x-modelyard-target-variant",
        b"x-modelyard-routing-key",
    }
)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}


def _not_found(path: str) -> dict[str, Any]:
    return {"error": {"code": "not_found", "message": shorten(f"no route {path}")}}


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"request body of {more}{size} bytes exceeds the limit of {limit} bytes"


async def _json(
    send: Send, status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", _JSON),
                (b"content-length", str(len(payload)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _error(
    send: Send, exc: ModelyardError, inference_id: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = {"error": {"code": exc.code, "message": exc.message, "inference_id": inference_id}}
    await _json(send, exc.http_status, body, extra)


def predict_executor() -> ThreadPoolExecutor:
    """The single predict thread of a server process.

    One thread per process: predictions queue behind each other, which is what lets the
    micro-batcher gather concurrent requests, and the models' own thread pools are not
    oversubscribed on small machines.
    """
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelyard-predict")
