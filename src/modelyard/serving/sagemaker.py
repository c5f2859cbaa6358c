"""The SageMaker runtime adapter: ``POST /endpoints/{name}/invocations``.

Parses the SageMaker runtime API's request (body, ``Content-Type``, ``Accept``,
``X-Amzn-SageMaker-Target-Variant``), hands it to the inference core, and renders the answer or
the error the way the SageMaker runtime does, so that boto3's ``invoke_endpoint`` reads them.
``POST /endpoints/{name}/invocations-response-stream`` (``invoke_endpoint_with_response_stream``)
is the same request, its ``Accept`` sent as ``X-Amzn-SageMaker-Accept``, answered as an event
stream of ``PayloadPart`` events holding the whole answer; ``POST
/endpoints/{name}/async-invocations`` (``invoke_endpoint_async``) is refused as a
``ValidationError``, since modelyard's endpoints are real-time only.

=========================================  ======  ===========================
error                                      status  ``x-amzn-ErrorType``
=========================================  ======  ===========================
bad input (body, media type, size, names)  4xx     ``ValidationError``
a method other than POST (``Allow: POST``)  405     ``ValidationError``
unknown endpoint or variant                404     ``ValidationError``
the model (or its handler) raised          424     ``ModelError`` (+ ``OriginalStatusCode``,
                                                   ``OriginalMessage``)
deployed, but not loaded in this server    429     ``ModelNotReadyException`` (botocore's
                                                   service model gives it 429)
the store or server cannot serve           503     ``ServiceUnavailable``
anything else                              500     ``InternalFailure``
=========================================  ======  ===========================

Every error body is ``{"message", "error_code", "inference_id"}``: botocore reads the code from
the header and ``message`` into ``ClientError``'s ``Error.Message``.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import orjson

from modelyard.codecs import event_stream, payloads
from modelyard.domain.inference_ids import new_inference_id
from modelyard.errors import (
    InvalidInput,
    MethodNotAllowed,
    ModelFailed,
    ModelNotReady,
    ModelyardError,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
    UnsupportedMediaType,
)
from modelyard.serving import handlers
from modelyard.serving.body_deadline import BodyDeadline
from modelyard.serving.dataplane import DataPlane
from modelyard.serving.http import (
    JSON,
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

PREFIX = "/endpoints/"
SUFFIX = "/invocations"
STREAM_SUFFIX = "/invocations-response-stream"
ASYNC_SUFFIX = "/async-invocations"

_CLIENT_ERRORS = (
    InvalidInput,
    UnsupportedMediaType,
    NotAcceptable,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
)


#: The runtime API's limits on its optional fields (InvokeEndpoint's request syntax).
MAX_CUSTOM_ATTRIBUTES = 1024
MAX_INFERENCE_ID = 64
#: What CustomAttributes may not hold: the API allows "visible US-ASCII characters as specified
#: in" RFC 7230 3.2.6, whose quoted strings and comments hold spaces and tabs too. A control
#: character reaches the route only from a server whose parser lets it through (uvicorn's
#: refuses most), and the model's handler must not get it as text.
_NOT_FIELD_TEXT = re.compile(r"[^\t\x20-\x7e]")


#: InvokeEndpoint's fields that choose a model within a kind of endpoint modelyard does not
#: serve, with that kind: the runtime refuses each on an endpoint of one model per variant, and
#: answering from the endpoint's usual variant instead would give the caller another model's
#: prediction without a word.
_OTHER_ENDPOINT_KINDS = (
    ("x-amzn-sagemaker-target-model", "TargetModel", "a multi-model endpoint"),
    (
        "x-amzn-sagemaker-target-container-hostname",
        "TargetContainerHostname",
        "a multi-container endpoint with direct invocation",
    ),
    ("x-amzn-sagemaker-inference-component", "InferenceComponentName", "inference components"),
)


def check_fields(headers: dict[str, str], given: str | None, endpoint: str = "") -> None:
    """Refuse what the SageMaker runtime refuses in ``CustomAttributes`` (at most 1024 visible
    ASCII characters, spaces and tabs between them), ``InferenceId`` (``given``: 1 to 64
    printable ASCII characters, the first not a space) and ``TargetVariant`` (not blank), and
    the fields that pick a model of a multi-model, multi-container or inference-component
    endpoint (``TargetModel``, ``TargetContainerHostname``, ``InferenceComponentName``), as the
    runtime refuses them on an endpoint of one model per variant, which every modelyard
    endpoint is: code tried here must not be refused for the first time in the cloud, nor
    answered by a model it did not ask for. ``CustomAttributes`` is taken and not used
    otherwise; ``InferenceId`` is captured beside our inference id (see the README).

    Raises:
        InvalidInput: naming the field and the limit it breaks.
    """
    for header, field, kind in _OTHER_ENDPOINT_KINDS:
        if header in headers:
            raise InvalidInput(
                f"endpoint {endpoint!r} is not {kind} and does not take {field}: modelyard "
                "serves one model version per variant; name the variant with TargetVariant"
            )
    custom = headers.get("x-amzn-sagemaker-custom-attributes")
    if custom is not None:
        odd = _NOT_FIELD_TEXT.search(custom)
        if odd is not None or len(custom) > MAX_CUSTOM_ATTRIBUTES:
            where = f" with U+{ord(odd[0]):04X} at {odd.start() + 1}" if odd else ""
            raise InvalidInput(
                f"CustomAttributes must be at most {MAX_CUSTOM_ATTRIBUTES} visible ASCII "
                f"characters (spaces and tabs between them), got {len(custom)} characters{where}"
            )
    if given is not None and not (
        0 < len(given) <= MAX_INFERENCE_ID
        and given.isascii()
        and given.isprintable()
        and not given[0].isspace()
    ):
        raise InvalidInput(
            f"InferenceId must be 1 to {MAX_INFERENCE_ID} printable ASCII characters, the first "
            f"not a space; got {len(given)} characters"
        )
    variant = headers.get("x-amzn-sagemaker-target-variant")
    if variant is not None and not variant.strip():
        raise InvalidInput("TargetVariant is blank: name a variant, or leave the field out")


class SageMakerRoute:
    """``POST /endpoints/{name}/invocations`` over the inference core."""

    def __init__(
        self, core: DataPlane, max_payload_bytes: int, worker: bytes, body_timeout_s: float = 30.0
    ) -> None:
        self._core = core
        self._limit = max_payload_bytes
        self._deadline = BodyDeadline(body_timeout_s)
        self._worker = (b"x-modelyard-worker", worker)

    async def invoke(
        self, name: str, scope: Scope, receive: Receive, send: Send, stream: bool = False
    ) -> None:
        """Answer one invocation of endpoint ``name``; any method but POST is refused (405).
        With ``stream``, the answer is an event stream (``InvokeEndpointWithResponseStream``)."""
        inference_id = new_inference_id()  # a UUIDv7: feedback finds it by its time
        headers = request_headers(scope)
        extra: list[tuple[bytes, bytes]] = [
            (b"x-modelyard-inference-id", inference_id.encode()),
            self._worker,
        ]
        meta = RequestMeta(
            endpoint=name,
            inference_id=inference_id,
            target_variant=headers.get("x-amzn-sagemaker-target-variant")
            or headers.get("x-modelyard-target-variant"),
            routing_key=headers.get("x-modelyard-routing-key"),
            caller_inference_id=headers.get("x-amzn-sagemaker-inference-id"),
        )
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"{scope['method']} not allowed; use POST", ("POST",))
            with self._core.choose(meta) as lease:
                extra.extend(lease.headers)
                handler = lease.handler
                accept = headers.get("accept")
                if stream:
                    accept = headers.get("x-amzn-sagemaker-accept", accept)
                if handler is None or handler.output_fn is None:
                    media = payloads.negotiate(accept)  # 406 before reading the body
                body = await read_body(headers, receive, self._limit, self._deadline)
                # After the body: refused with it unread, the connection could not be reused.
                # Before the predict stack sees the caller's id: a refused one is not captured.
                check_fields(headers, meta.caller_inference_id, meta.endpoint)
                check_single_valued(headers)
                lease.request_bytes = len(body)
                content_type = headers.get("content-type")
                rows: Any  # an array, or a DataFrame for a model taking text
                if handler is not None and handler.input_fn is not None:
                    rows = await handlers.run_input_fn(handler, body, content_type)
                else:
                    rows = payloads.decode(body, content_type, lease.signature)
                predictions = await lease.predict(rows)
                if handler is not None and handler.output_fn is not None:
                    payload, media = await handlers.run_output_fn(handler, predictions, accept)
                else:
                    payload = payloads.encode(predictions, media)
                lease.response_bytes = len(payload)
        except Exception as raised:  # typed errors in SageMaker's shape; a defect as one too
            exc = typed_error(raised, inference_id, name)
            status, kind, body_ = render_error(exc, inference_id)
            answer = [(b"x-amzn-errortype", kind), *extra, *error_headers(exc)]
            await respond(send, status, body_, JSON, answer)
            return
        if stream:
            extra.append((b"x-amzn-sagemaker-content-type", media.encode()))
            media, payload = event_stream.MEDIA_TYPE, event_stream.payload_parts(payload)
        await respond(send, 200, payload, media.encode(), extra)

    async def refuse_async(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``InvokeEndpointAsync`` with a ``ValidationError`` saying what to use, once
        its body is read (refused with it unread, the connection could not be reused)."""
        inference_id = new_inference_id()
        # Too large or too slow to read: the refusal below is still what matters.
        with contextlib.suppress(ModelyardError):
            await read_body(request_headers(scope), receive, self._limit, self._deadline)
        error = InvalidInput(
            f"asynchronous invocation (InvokeEndpointAsync) of endpoint {name!r} is not "
            "supported: modelyard endpoints are real-time; use invoke_endpoint, or a batch "
            "transform job (modelyard batch) for inputs in storage"
        )
        status, kind, body = render_error(error, inference_id)
        headers = [
            (b"x-amzn-errortype", kind),
            (b"x-modelyard-inference-id", inference_id.encode()),
            self._worker,
        ]
        await respond(send, status, body, JSON, headers)


def answered_status(exc: ModelyardError) -> int:
    """The HTTP status SageMaker's runtime answers ``exc`` with: a model's failure is 424
    (``ModelError``), a model not loaded 429 (``ModelNotReadyException``, as the runtime's
    service model defines it), anything else its own status (the metrics label errors with
    it too)."""
    if isinstance(exc, ModelFailed):
        return 424
    if isinstance(exc, ModelNotReady):
        return 429
    return exc.http_status


def render_error(exc: ModelyardError, inference_id: str) -> tuple[int, bytes, bytes]:
    """The status, ``x-amzn-ErrorType`` and body SageMaker's runtime would answer ``exc`` with."""
    body: dict[str, Any] = {
        "message": exc.message,
        "error_code": exc.code,
        "inference_id": inference_id,
    }
    status = answered_status(exc)
    if isinstance(exc, _CLIENT_ERRORS):
        kind = b"ValidationError"
    elif isinstance(exc, ModelFailed):
        kind = b"ModelError"
        body["OriginalStatusCode"] = exc.http_status
        body["OriginalMessage"] = exc.message
        body["message"] = (
            f'Received server error ({exc.http_status}) from the model with message "{exc.message}"'
        )
    elif isinstance(exc, ModelNotReady):
        kind = b"ModelNotReadyException"
    elif isinstance(exc, StorageUnavailable):
        kind = b"ServiceUnavailable"
    else:
        kind = b"InternalFailure"
    return status, kind, orjson.dumps(body)
