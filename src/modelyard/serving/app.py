"""The serving ASGI application of one server process: routes, lifespan and assembly.

Routes:
    POST /endpoints/{name}/invocations   predict (the SageMaker runtime API, ``sagemaker.py``)
    POST /endpoints/{name}/invocations-response-stream   the same, answered as an event stream
    POST /endpoints/{name}/async-invocations             refused: endpoints are real-time
    POST /endpoints/{name}/feedback      ground-truth labels of past predictions (``feedback.py``)
    /v2/...                              the Open Inference Protocol V2 (``v2/rest.py``)
    GET  /ping                           200 when every deployed model is loaded (SageMaker)
    GET  /healthz                        200 while the process runs (liveness)
    GET  /readyz                         200 when ready, else 503 with the reasons
    GET  /endpoints                      what this process serves, as JSON
    GET  /metrics                        Prometheus metrics, summed over the server's workers

``HEAD`` is answered as ``GET`` without the body (load balancers and SageMaker health checks
send it). A known path asked with a method it does not answer gets 405 with an ``Allow``
header, in its protocol's error shape (the adapters' own; the routes above: the app's).

Every protocol is a thin adapter over one inference core (``dataplane.py``); the predict stack
(``stack.py``), CORS (``cors.py``) and the payload limit (``http.read_body``) are assembled here,
in :func:`build_app`, and nowhere else.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from modelyard.errors import MethodNotAllowed, ModelyardError, NotFound
from modelyard.serving.cors import CorsMiddleware
from modelyard.serving.dataplane import DataPlane, RequestObserver
from modelyard.serving.deployer import Deployer
from modelyard.serving.feedback import SUFFIX as FEEDBACK_SUFFIX
from modelyard.serving.feedback import FeedbackRoute, FeedbackSink
from modelyard.serving.http import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    error_headers,
    respond_json,
    without_body,
)
from modelyard.serving.predict_thread import PredictThread
from modelyard.serving.sagemaker import (
    ASYNC_SUFFIX,
    PREFIX,
    STREAM_SUFFIX,
    SUFFIX,
    SageMakerRoute,
)
from modelyard.serving.stack import Wrapper, assemble

log = logging.getLogger("modelyard.serving")


@dataclass(frozen=True)
class ServerOptions:
    """Per-server settings of the data plane."""

    max_payload_bytes: int = 6 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    body_timeout_s: float = 30.0
    predict_timeout_s: float = 60.0


class Companion(Protocol):
    """Something that runs beside the HTTP routes for the life of a worker (the gRPC server,
    the status reporter): started after the plan is loaded, stopped at shutdown."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Routes(Protocol):
    """A protocol adapter that owns every path under a prefix."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class ServingApp:
    """The ASGI app of one server process (wrapped in CORS by :func:`build_app`)."""

    def __init__(
        self,
        core: DataPlane,
        options: ServerOptions,
        v2: Routes | None = None,
        companions: Sequence[Companion] = (),
        metrics: Routes | None = None,
        feedback: FeedbackSink | None = None,
    ) -> None:
        self.core = core
        self.deployer: Deployer = core.deployer
        self.options = options
        self.worker = str(os.getpid()).encode()
        self._sagemaker = SageMakerRoute(
            core, options.max_payload_bytes, self.worker, options.body_timeout_s
        )
        self._v2 = v2
        self._feedback = FeedbackRoute(feedback, options.max_payload_bytes, options.body_timeout_s)
        self._metrics = metrics
        self._companions = list(companions)
        self._tasks: list[asyncio.Task[None]] = []

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
                try:
                    for companion in self._companions:
                        await companion.start()
                except Exception as exc:
                    log.exception("could not start the server")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                _freeze_startup_heap()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # The plan poller first (nothing new is loaded while stopping), then the
                # companions in reverse order: the last one started is the first stopped.
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                for companion in reversed(self._companions):
                    try:
                        await companion.stop()
                    except Exception:
                        log.exception("could not stop %s cleanly", type(companion).__name__)
                self.deployer.close()
                gc.unfreeze()  # for a process that goes on after serving (the demo)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- http --------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "HEAD":  # answered as GET, without the body (health checks use it)
            send = without_body(send)
        if path.startswith(PREFIX):
            if path.endswith(SUFFIX):  # the adapters refuse other methods in their own shape
                await self._sagemaker.invoke(path[len(PREFIX) : -len(SUFFIX)], scope, receive, send)
                return
            if path.endswith(FEEDBACK_SUFFIX):
                name = path[len(PREFIX) : -len(FEEDBACK_SUFFIX)]
                await self._feedback.post(name, scope, receive, send)
                return
            if path.endswith(STREAM_SUFFIX):
                name = path[len(PREFIX) : -len(STREAM_SUFFIX)]
                await self._sagemaker.invoke(name, scope, receive, send, stream=True)
                return
            if path.endswith(ASYNC_SUFFIX) and method == "POST":
                await self._sagemaker.refuse_async(
                    path[len(PREFIX) : -len(ASYNC_SUFFIX)], scope, receive, send
                )
                return
        if path.startswith("/v2") and self._v2 is not None and path[3:4] in ("", "/"):
            await self._v2(scope, receive, send)
            return
        if method != "GET" and method != "HEAD":
            if path in _GET_ROUTES and (path != "/metrics" or self._metrics is not None):
                await _refuse(send, MethodNotAllowed(f"{method} {path} not allowed; use GET", _GET))
            else:
                await _refuse(send, NotFound(f"no route {method} {path}"))
            return
        if path == "/ping":
            ready = self.deployer.ready
            await respond_json(send, 200 if ready else 503, {"ready": ready})
        elif path == "/healthz":
            await respond_json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            ready = self.deployer.ready
            body = {
                "ready": ready,
                "revision": self.deployer.table.revision,
                "failures": self.deployer.failures,
                "loading": self.deployer.loading,
                "worker": os.getpid(),
            }
            await respond_json(send, 200 if ready else 503, body)
        elif path == "/endpoints":
            await respond_json(send, 200, self._describe())
        elif path == "/metrics" and self._metrics is not None:
            await self._metrics(scope, receive, send)
        else:
            await _refuse(send, NotFound(f"no route {path}"))

    def _describe(self) -> dict[str, Any]:
        table = self.deployer.table
        return {
            "revision": table.revision,
            "endpoints": [
                {
                    "name": e.name,
                    "config": e.config_number,
                    "variants": [
                        {
                            "name": v.name,
                            "model": v.served.spec.ref,
                            "weight": v.weight,
                            "shadow": v.shadow,  # a shadow's sampling percent, else None
                            "inflight": v.inflight,
                            "predictor": v.served.choice.to_dict(),
                        }
                        for v in e.variants.values()
                    ],
                }
                for e in table.endpoints.values()
            ],
            # Replaced models still finishing their requests; unloaded when inflight is 0.
            "retired": [
                {"model": m.spec.ref, "inflight": m.inflight} for m in self.deployer.retired
            ],
            "failures": self.deployer.failures,
            "loading": self.deployer.loading,  # endpoints deployed since, not served yet
            "worker": os.getpid(),
        }


_GET_ROUTES = {"/ping", "/healthz", "/readyz", "/endpoints", "/metrics"}
_GET = ("GET", "HEAD")


def _freeze_startup_heap() -> None:
    """Move every object alive after startup (modules, loaded models) out of the cyclic GC's
    reach, for the life of the worker.

    A full (generation 2) collection walks every tracked object: ~160k here, 100-400 ms on a
    busy 2-core machine, during which the event loop answers nothing; it is triggered every
    few seconds under load. Frozen, those objects are never walked again, and a full
    collection sees only what was allocated since (a few ms at most). Garbage is collected
    first so that none of it is frozen. Shutdown unfreezes (``gc.unfreeze``).

    Cost: cyclic garbage among frozen objects (a model unloaded later, if its objects form
    cycles) is not reclaimed while the worker serves.
    """
    gc.collect()
    gc.freeze()


async def _refuse(send: Send, error: ModelyardError) -> None:
    """The app's own routes' error answer: ``{"error": {"code", "message"}}``."""
    await respond_json(send, error.http_status, error.to_dict(), error_headers(error))


def build_app(
    deployer: Deployer,
    options: ServerOptions,
    wrappers: Sequence[Wrapper] = (),
    v2: Any = None,
    companions: Sequence[Any] = (),
    observer: RequestObserver | None = None,
    metrics: Routes | None = None,
    feedback: FeedbackSink | None = None,
) -> ASGIApp:
    """Assemble one server process's app: the predict stack (``wrappers``, outermost first,
    around the micro-batcher), the inference core, the protocol routes and CORS.

    Args:
        v2: A factory ``(core, options, worker) -> Routes`` for the V2 routes, or None.
        companions: Factories ``(core) -> Companion`` run for the life of the worker.
        observer: Told of every request's outcome by the core (the metrics).
        metrics: The ``GET /metrics`` route, or None (404).
        feedback: Where ``POST /endpoints/{name}/feedback`` records labels, or None (404).
    """
    core = DataPlane(deployer, assemble(wrappers), observer, options.predict_timeout_s)
    worker = str(os.getpid()).encode()
    app = ServingApp(
        core,
        options,
        v2=v2(core, options, worker) if v2 is not None else None,
        companions=[make(core) for make in companions],
        metrics=metrics,
        feedback=feedback,
    )
    return CorsMiddleware(app, options.cors_origins)


def predict_executor(predict_timeout_s: float = 60.0) -> PredictThread:
    """The single predict thread of a server process.

    One thread per process: predictions queue behind each other, which is what lets the
    micro-batcher gather concurrent requests, and the models' own thread pools are not
    oversubscribed on small machines. A call in a model for half the predict timeout is left
    to its thread, and another takes the queue (``predict_thread.py``), so that the requests
    queued behind it are answered before their own timeout.
    """
    return PredictThread(stuck_after_s=predict_timeout_s / 2)
