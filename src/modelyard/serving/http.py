"""ASGI plumbing every HTTP route of the data plane shares: headers, the request body under the
payload limit, and JSON responses.

The serving app is a plain ASGI callable: the invocation path is the product's hot path, and a
framework's routing and request objects cost more than the whole handler. The payload limit
lives here, in :func:`read_body`, and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from modelyard.codecs import content_encoding
from modelyard.codecs.json_shapes import clip
from modelyard.errors import (
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    ModelyardError,
    PayloadTooLarge,
    RequestTimeout,
)

log = logging.getLogger("modelyard.serving")

if TYPE_CHECKING:
    from modelyard.serving.body_deadline import BodyDeadline

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"

# The request headers the data plane reads, by the name a header dict gives them; the rest
# (SigV4's among them) are never decoded.
_WANTED = {
    name: name.decode("latin-1")
    for name in (
        b"accept",
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"origin",
        b"x-amzn-sagemaker-target-variant",
        b"x-amzn-sagemaker-accept",
        b"x-amzn-sagemaker-custom-attributes",
        b"x-amzn-sagemaker-inference-id",
        b"x-amzn-sagemaker-target-model",
        b"x-amzn-sagemaker-target-container-hostname",
        b"x-amzn-sagemaker-inference-component",
        b"x-modelyard-target-variant",
        b"x-modelyard-routing-key",
        b"inference-header-content-length",
        b"access-control-request-method",
    )
}

#: The headers read here whose value is a comma-separated list (RFC 9110 12.5.1 Accept, 8.4
#: Content-Encoding; X-Amzn-SageMaker-Accept is the stream's Accept): two field lines of one
#: are one list, their values joined with a comma in the order sent (RFC 9110 5.3).
_LISTS = frozenset({"accept", "content-encoding", "x-amzn-sagemaker-accept"})


class RequestHeaders(dict[str, str]):
    """The request headers the data plane reads (see :func:`request_headers`), with the note
    of a single-valued one sent twice with different values (``conflict``), if any.

    No ``__init__`` of its own: made on every request, it costs 0.07 us so (0.34 with one)."""

    conflict: str | None = None


def request_headers(scope: Scope) -> RequestHeaders:
    """The request headers the data plane uses, by lower-case name: a list-valued one sent in
    several field lines is their values joined with ``", "``, in order. Any other keeps its last
    line, and two lines of it that disagree (RFC 9110 5.3: they cannot be combined) leave a
    note that :func:`check_single_valued` raises once the adapter has read the body."""
    found = RequestHeaders()
    for key, value in scope["headers"]:  # one loop: this runs on every request
        name = _WANTED.get(key)
        if name is None:
            continue
        text = value.decode("latin-1")
        if name not in found:
            found[name] = text
        elif name in _LISTS:
            found[name] += ", " + text
        else:
            if found[name] != text and found.conflict is None:
                found.conflict = (
                    f"the request has two different {_shown(name)} headers, "
                    f"{clip(found[name])} and {clip(text)}: send one"
                )
            found[name] = text  # the last, as before the note is read
    return found


def _shown(name: str) -> str:
    """A header's name as messages write it: ``Content-Type``."""
    return "-".join(part.capitalize() for part in name.split("-"))


def check_single_valued(headers: RequestHeaders) -> None:
    """Refuse a request that sent a single-valued header twice with different values (noted
    by :func:`request_headers`): which one the sender meant is unknowable. The same value
    twice is that value.

    Raises:
        InvalidInput: naming the header and both values.
    """
    if headers.conflict is not None:
        raise InvalidInput(headers.conflict)


def too_large(size: int, limit: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"request body of {more}{size} bytes exceeds the limit of {limit} bytes"


def check_declared_size(headers: dict[str, str], limit: int) -> None:
    """Refuse a body whose ``Content-Length`` is over ``limit``, before reading it.

    Raises:
        InvalidInput: a malformed Content-Length; PayloadTooLarge: over the limit.
    """
    declared = headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidInput(f"malformed Content-Length {declared!r}") from None
        if size > limit:
            raise PayloadTooLarge(too_large(size, limit))


async def read_body(
    headers: dict[str, str], receive: Receive, limit: int, deadline: BodyDeadline | None = None
) -> bytes:
    """The whole request body, inflated if it was sent gzip- or deflate-encoded.

    The declared size is checked before the first byte is read, a chunked upload is cut off as
    soon as it passes ``limit``, and an inflated body may not pass it either. With a
    ``deadline``, a body that has not all arrived within its timeout is given up on.

    Raises:
        PayloadTooLarge, InvalidInput (malformed length, client gone, corrupt compressed body),
        UnsupportedMediaType (an unknown content coding, before the body is read),
        RequestTimeout (the body did not arrive in time).
    """
    encoding = headers.get("content-encoding")
    codings = content_encoding.codings(encoding) if encoding is not None else ()
    check_declared_size(headers, limit)
    chunks: list[bytes] = []
    total = 0
    task = deadline.enter() if deadline is not None else None
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise InvalidInput("the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(too_large(total, limit, at_least=True))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        if deadline is None or not deadline.timed_out(task):
            raise
        raise RequestTimeout(
            f"the request body did not arrive within {deadline.timeout_s:g} s ({total} bytes came)"
        ) from None
    finally:
        if deadline is not None:
            deadline.leave(task)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return content_encoding.inflate(body, codings, limit) if codings else body


def typed_error(raised: Exception, inference_id: str, endpoint: str) -> ModelyardError:
    """``raised`` as the typed error a protocol adapter renders its answer from: a defect of
    the server's own (no typed error) is logged with its traceback and answered as an internal
    error naming the inference id, never as the ASGI server's bare text 500."""
    if isinstance(raised, ModelyardError):
        return raised
    log.exception("inference %s on %s failed", inference_id, endpoint)
    return InternalError(f"internal error; inference id {inference_id}")


def error_headers(error: BaseException) -> list[tuple[bytes, bytes]]:
    """The headers an error answer needs whatever its protocol: ``Allow`` for a 405, and
    ``Connection: close`` for an answer that leaves the request's body unread (408): kept
    alive, the connection would wait on a client that stalled, with no timer to end it."""
    if isinstance(error, RequestTimeout):
        return [(b"connection", b"close")]
    if isinstance(error, MethodNotAllowed) and error.allowed:
        return [(b"allow", ", ".join(error.allowed).encode())]
    return []


def without_body(send: Send) -> Send:
    """``send`` for a HEAD request: the answer a GET gets, headers and all, with no body
    (RFC 9110 9.3.2; uvicorn drops it too, other servers may not)."""

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        await send(message)

    return send_head


async def respond(
    send: Send, status: int, body: bytes, media: bytes, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send a complete response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, body: Any, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send ``body`` as JSON."""
    await respond(send, status, orjson.dumps(body), JSON, extra)
