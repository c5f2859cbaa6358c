"""Running a variant's inference handler (``input_fn`` / ``output_fn``) on a request.

The hooks are user code: they run off the event loop, and what they raise is translated here.
A ``ValueError``, ``TypeError`` or ``KeyError`` from ``input_fn`` means the request was bad
(400, with the handler's message); anything else is a failure of the endpoint (500, logged).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from modelyard.errors import InvalidPayload, ModelFailed
from modelyard.runtimes.handler import InferenceHandler
from modelyard.serving.batching import MODEL_RAISES

log = logging.getLogger("modelyard.serving")

_CLIENT_ERRORS = (ValueError, TypeError, KeyError, UnicodeDecodeError)


async def run_input_fn(
    handler: InferenceHandler, body: bytes, content_type: str | None
) -> np.ndarray:
    """Features (rows x columns) from ``input_fn(body, content_type)``.

    Raises:
        InvalidPayload: the handler refused the request; ModelFailed: it broke.
    """
    assert handler.input_fn is not None
    hook = handler.input_fn
    try:
        features: Any = await asyncio.to_thread(hook, body, content_type or "")
    except _CLIENT_ERRORS as exc:
        raise InvalidPayload(f"the endpoint's input_fn refused the request: {exc}") from None
    except MODEL_RAISES as exc:
        log.error("input_fn failed", exc_info=exc)
        raise ModelFailed(f"the endpoint's input_fn raised {type(exc).__name__}") from None
    rows = features if hasattr(features, "shape") else np.asarray(features)
    if not hasattr(rows, "__len__") or hasattr(rows, "toarray"):  # a scipy sparse matrix
        # Batching, capture and the metrics count rows with len(), which sparse matrices
        # refuse; a dense copy could be huge (a HashingVectorizer's 2**20 columns a row).
        log.error("input_fn returned %s, not rows", type(features).__name__)
        raise ModelFailed(
            f"the endpoint's input_fn returned a {type(features).__name__}: return a dense "
            "array (a sparse matrix's .toarray()), a list of rows or a DataFrame"
        )
    if len(rows.shape) == 1:
        rows = rows.reshape(1, -1)
    if len(rows.shape) != 2 or rows.shape[0] == 0:
        raise ModelFailed(f"the endpoint's input_fn returned shape {rows.shape}, not rows")
    return rows


async def run_output_fn(
    handler: InferenceHandler, predictions: np.ndarray, accept: str | None
) -> tuple[bytes, str]:
    """The response body and media type from ``output_fn(predictions, accept)``.

    Raises:
        ModelFailed: the handler raised or returned something other than (body, type).
    """
    assert handler.output_fn is not None
    hook = handler.output_fn
    try:
        body, media = await asyncio.to_thread(hook, predictions, accept or "application/json")
    except MODEL_RAISES as exc:
        log.error("output_fn failed", exc_info=exc)
        raise ModelFailed(f"the endpoint's output_fn raised {type(exc).__name__}") from None
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes | bytearray) or not isinstance(media, str):
        raise ModelFailed("the endpoint's output_fn must return (body, content_type)")
    return bytes(body), media
