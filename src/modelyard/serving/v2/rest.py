"""The Open Inference Protocol V2 over HTTP/REST (KServe's spec, with Triton's binary tensor
data extension): every path under ``/v2``, a thin adapter over the inference core.

=====================================================  ========================================
``GET  /v2/health/live``                               200 ``{"live": true}`` while it runs
``GET  /v2/health/ready``                              200 ``{"ready": true}`` once every
                                                       deployed model is loaded and warmed,
                                                       else 400 ``{"ready": false}``
``GET  /v2``                                           ``{"name", "version", "extensions"}``
``GET  /v2/models/{name}[/versions/{v}]``              model metadata (:func:`.model_metadata`)
``GET  /v2/models/{name}[/versions/{v}]/ready``        200 ``{"name", "ready": true}``, or 400
                                                       with ``"ready": false``
``POST /v2/models/{name}[/versions/{v}]/infer``        predict (:mod:`.payload`, :mod:`.tensors`)
=====================================================  ========================================

``{name}`` is an endpoint, ``{v}`` a variant name or a model version number it serves (see
:mod:`.catalog`); without ``{v}`` the endpoint's traffic split chooses (an
``X-Modelyard-Routing-Key`` header makes it sticky). A response's ``model_version`` is the
number of the model version that answered (``"3"``); its headers name the variant and the
version (``X-Modelyard-Variant``, ``X-Modelyard-Model-Version: churn:3``), the inference id and
the worker, as on the SageMaker route. Not-ready answers are 400, as the protocol's health API
asks (a 4xx means false).

Errors are ``{"error": "<message>"}`` (:func:`render_error`, the one place they are shaped):

==============================================================  ======
malformed JSON, a missing field, unknown datatype, shape and      400
data that disagree, BYTES for a numeric feature, features other
than the signature's, an unknown output, binary sizes or an
``Inference-Header-Content-Length`` that do not fit the body (or
two such headers that differ)
unknown endpoint, version or path                                 404
wrong method (with an ``Allow`` header; HEAD answers as GET)      405
body over the payload limit (from Content-Length, before          413
reading it; or as soon as a chunked body passes it)
unknown Content-Encoding                                          415
the model raised (message has the inference id; the model's      500
own message stays in the server log)
deployed but not loaded here (``ModelNotReady``), or the plan     503
is not loaded yet
==============================================================  ======
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

import orjson

from modelyard.domain.inference_ids import new_inference_id
from modelyard.errors import MethodNotAllowed, ModelyardError, NotFound
from modelyard.serving.body_deadline import BodyDeadline
from modelyard.serving.dataplane import DataPlane
from modelyard.serving.http import (
    JSON,
    Headers,
    Receive,
    Scope,
    Send,
    check_single_valued,
    error_headers,
    read_body,
    request_headers,
    respond,
    typed_error,
)
from modelyard.serving.stack import RequestMeta
from modelyard.serving.v2 import binary, catalog
from modelyard.serving.v2.payload import encode_response, parse_request
from modelyard.serving.v2.tensors import check_requested, output_tensors, rows_from_tensors

if TYPE_CHECKING:
    from modelyard.serving.app import ServerOptions

__all__ = ["EXTENSIONS", "V2Rest", "render_error"]

#: The protocol extensions the REST routes implement (announced by ``GET /v2``).
EXTENSIONS = ("binary_tensor_data",)

_MODELS = "/v2/models/"
_MODELS_RAW = _MODELS.encode()
_OCTETS = b"application/octet-stream"
_LIVE = orjson.dumps({"live": True})


class V2Rest:
    """The ASGI app for every path under ``/v2``, over the inference core."""

    def __init__(self, core: DataPlane, options: ServerOptions, worker: bytes) -> None:
        self._core = core
        self._limit = options.max_payload_bytes
        self._deadline = BodyDeadline(options.body_timeout_s)
        self._worker = (b"x-modelyard-worker", worker)
        self._server_metadata = orjson.dumps(catalog.server_metadata(EXTENSIONS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        extra: Headers = [self._worker]
        try:
            if path.startswith(_MODELS):
                name, version, action = _model_path(path, scope.get("raw_path"))
                if action == "infer":
                    _require(method, "POST", path)
                    await self._infer(name, version, scope, receive, send, extra)
                    return
                _require(method, "GET", path)
                if action == "ready":
                    ready = catalog.model_ready(self._core, name, version)
                    body = orjson.dumps({"name": name, "ready": ready})
                    status = 200 if ready else 400
                else:
                    body = orjson.dumps(catalog.describe(self._core, name, version))
                    status = 200
            else:
                status, body = self._server_route(path, method)
        except ModelyardError as exc:
            status, body = render_error(exc)
            extra.extend(error_headers(exc))
        await respond(send, status, body, JSON, extra)

    def _server_route(self, path: str, method: str) -> tuple[int, bytes]:
        route = path.removesuffix("/")  # a trailing slash, as the model routes take it
        if route == "/v2":
            _require(method, "GET", path)
            return 200, self._server_metadata
        if route == "/v2/health/live":
            _require(method, "GET", path)
            return 200, _LIVE
        if route == "/v2/health/ready":
            _require(method, "GET", path)
            ready = catalog.server_ready(self._core)
            return (200 if ready else 400), orjson.dumps({"ready": ready})
        raise NotFound(f"no route {path}")

    async def _infer(
        self,
        name: str,
        version: str | None,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra: Headers,
    ) -> None:
        inference_id = new_inference_id()  # a UUIDv7: feedback finds it by its time
        extra.append((b"x-modelyard-inference-id", inference_id.encode()))
        headers = request_headers(scope)
        meta = RequestMeta(
            endpoint=name,
            inference_id=inference_id,
            target_version=version,
            routing_key=headers.get("x-modelyard-routing-key"),
            protocol="v2-rest",
        )
        try:
            with self._core.choose(meta) as lease:
                extra.extend(lease.headers)
                body = await read_body(headers, receive, self._limit, self._deadline)
                lease.request_bytes = len(body)
                check_single_valued(headers)  # after the body: the connection can be reused
                request = parse_request(body, headers.get(binary.HEADER))
                check_requested(request.outputs)
                rows = rows_from_tensors(request.inputs, lease.signature)
                predictions = await lease.predict(rows)
                outputs = output_tensors(predictions, lease.signature, request.outputs)
                answer, json_length = encode_response(
                    name, str(lease.model_version), request, outputs
                )
                lease.response_bytes = len(answer)
        except Exception as raised:  # typed errors in V2's shape; a defect as one too
            exc = typed_error(raised, inference_id, name)
            status, error = render_error(exc, inference_id)
            await respond(send, status, error, JSON, [*extra, *error_headers(exc)])
            return
        media = JSON
        if json_length is not None:
            media = _OCTETS
            extra.append((b"inference-header-content-length", str(json_length).encode()))
        await respond(send, 200, answer, media, extra)


def render_error(exc: ModelyardError, inference_id: str | None = None) -> tuple[int, bytes]:
    """The status and ``{"error": message}`` body the V2 REST API answers ``exc`` with.

    A server-side failure (5xx) names the inference id, so a caller can quote it and the
    server's log line about it can be found.
    """
    status = exc.http_status
    message = exc.message
    if status >= 500 and inference_id is not None and inference_id not in message:
        message = f"{message}; inference id {inference_id}"
    return status, orjson.dumps({"error": message})


def _model_path(path: str, raw_path: bytes | None = None) -> tuple[str, str | None, str]:
    """``(name, version or None, action)`` of a ``/v2/models/…`` path; action is ``""``
    (metadata), ``"ready"`` or ``"infer"``.

    The path is split where the request has a ``/``: an escaped one (``%2F``) is part of a
    name, as the URL says, so ``/v2/models/a%2Fready`` is model ``a/ready``, not the readiness
    of ``a`` (``path`` is decoded already; ``raw_path`` is as sent).

    Raises:
        NotFound: any other path.
    """
    if raw_path is not None and b"%" in raw_path and raw_path.startswith(_MODELS_RAW):
        # Some servers (httpx's ASGI transport) leave the query string on raw_path.
        raw = raw_path[len(_MODELS_RAW) :].partition(b"?")[0].decode("latin-1").split("/")
        parts = [unquote(part) for part in raw]
    else:
        parts = path[len(_MODELS) :].split("/")
    if parts[-1] == "":  # a trailing slash
        parts.pop()
    version = None
    rest = parts[1:]
    if len(rest) >= 2 and rest[0] == "versions":
        version, rest = rest[1], rest[2:]
    action = rest[0] if len(rest) == 1 else "" if not rest else "?"
    if not parts or not parts[0] or version == "" or action not in ("", "ready", "infer"):
        raise NotFound(f"no route {path}")
    return parts[0], version, action


def _require(method: str, allowed: str, path: str) -> None:
    """Refuse any method but ``allowed`` (HEAD goes with GET: the app drops its body)."""
    if method != allowed and (method != "HEAD" or allowed != "GET"):
        methods = ("GET", "HEAD") if allowed == "GET" else (allowed,)
        raise MethodNotAllowed(f"{method} {path} is not allowed; use {allowed}", methods)
