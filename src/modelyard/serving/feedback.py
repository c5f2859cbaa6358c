"""``POST /endpoints/{name}/feedback``: ground-truth labels for predictions already made.

Request (``Content-Type: application/json``, or none)::

    {"feedback": [
        {"inference_id": "01938c5e7b2a7c3e9f0d4a1b2c3d4e5f", "label": 1},
        {"inference_id": "01938c5e7b2a7c3e9f0d4a1b2c3d4e60", "row": 2, "label": "churned"}
    ]}

``inference_id`` is the ``x-modelyard-inference-id`` header of the prediction's answer, or
the ``InferenceId`` the caller sent with the request (SageMaker's, captured beside ours);
``row`` the row's index in that request (needed when it sent several rows); ``label`` a JSON
number, string or boolean. At most 10,000 items and ``max_payload_bytes`` per request. A later
label for the same id and row replaces the earlier one.

Answers:

=====  =========================================================================
200    ``{"endpoint", "counts": {"accepted", "unknown", "expired", "ambiguous"},
       "results": [{"inference_id", "row", "status", "message"}, …]}``, one result per
       item, in order: an unknown, expired or ambiguous id is reported there, not as an
       error (ambiguous: a caller's id that several captured requests carry)
400    a malformed body or item, or a label the model cannot have (a string for a
       regressor, a class the classifier does not have): nothing is stored
404    no such endpoint (or feedback is not served by this server)
405    not a POST
413    a body over the size limit, or over 10,000 items
415    a body that is not JSON
503    the metadata store or the captured rows cannot be read
=====  =========================================================================

Error bodies have the invocations route's shape: ``{"message", "error_code"}``.

The data plane records nothing itself: a :class:`FeedbackSink` (the feedback service, wired
by ``bootstrap``) does, on a worker thread, so the event loop never waits for the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from modelyard.errors import (
    EndpointNotFound,
    InvalidPayload,
    MethodNotAllowed,
    ModelyardError,
    UnsupportedMediaType,
)
from modelyard.serving.body_deadline import BodyDeadline
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
)

log = logging.getLogger("modelyard.serving")

SUFFIX = "/feedback"

#: A UTF-8 byte order mark, which some clients write before a JSON body.
_BOM = b"\xef\xbb\xbf"


class FeedbackSink(Protocol):
    """Where labels go: ``FeedbackService.record`` with its result as JSON."""

    def record(self, endpoint: str, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Record ``items`` (the body's ``feedback`` list, as sent) for ``endpoint``.

        Returns:
            The per-item result (``FeedbackResult.to_dict()``).

        Raises:
            ModelyardError: InvalidInput, EndpointNotFound, PayloadTooLarge, StorageUnavailable.
        """
        ...


class FeedbackRoute:
    """``POST /endpoints/{name}/feedback`` over a :class:`FeedbackSink`."""

    def __init__(
        self, sink: FeedbackSink | None, max_payload_bytes: int, body_timeout_s: float = 30.0
    ) -> None:
        self._sink = sink
        self._limit = max_payload_bytes
        self._deadline = BodyDeadline(body_timeout_s)

    async def post(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one feedback request for endpoint ``name`` (see the module docstring); any
        method but POST is refused (405)."""
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"{scope['method']} not allowed; use POST", ("POST",))
            sink = self._sink
            if sink is None:
                raise EndpointNotFound(f"this server does not take feedback for {name!r}")
            items = await self._items(scope, receive)
            result = await asyncio.to_thread(sink.record, name, items)
        except ModelyardError as exc:
            await _error(send, exc.http_status, exc.code, exc.message, error_headers(exc))
            return
        except Exception:  # never a traceback to the caller
            log.exception("recording feedback for endpoint %s failed", name)
            await _error(send, 500, "internal_error", "recording feedback failed; see the log")
            return
        await respond(send, 200, orjson.dumps(result), JSON)

    async def _items(self, scope: Scope, receive: Receive) -> list[Any]:
        headers = request_headers(scope)
        media = headers.get("content-type", "application/json").partition(";")[0].strip()
        if media.lower() not in ("application/json", ""):
            raise UnsupportedMediaType(f"feedback must be sent as application/json, not {media!r}")
        body = await read_body(headers, receive, self._limit, self._deadline)
        check_single_valued(headers)  # after the body: the connection can be reused
        if body.startswith(_BOM):  # skipped, as invocations skip it
            body = body[len(_BOM) :]
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidPayload(f"the feedback body is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("feedback"), list):
            raise InvalidPayload(
                'the feedback body must be an object {"feedback": [{"inference_id": …, '
                '"label": …}, …]}'
            )
        extra = sorted(k for k in data if k != "feedback")
        if extra:
            raise InvalidPayload(f"the feedback body has unknown fields {extra}")
        items: list[Any] = data["feedback"]
        return items


async def _error(
    send: Send, status: int, code: str, message: str, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = orjson.dumps({"message": message, "error_code": code})
    await respond(send, status, body, JSON, extra)
