"""The predict stack: an ordered list of wrappers with one interface around the micro-batcher.

Every protocol's request reaches the model through the same stack, assembled once (in the app
factory). A wrapper sees the whole call: which endpoint, which variant answered and which get a
copy, the rows, and the request's metadata. It may act before and after the inner handler
(metrics, capture), or call other variants alongside it (shadow fan-out), without any adapter
knowing. The innermost handler is the variant's micro-batcher.

    handler = assemble([shadows, monitoring], batched)
    predictions = await handler(call)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from modelyard.serving.routing import Selection


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """What a protocol adapter knows about a request, apart from its rows.

    Attributes:
        endpoint: The endpoint name the request addressed.
        inference_id: The id every response and log line about this request carries.
        target_variant: A variant name the caller asked for (SageMaker ``TargetVariant``).
        target_version: A V2 model version: a variant name, or the number of a model version
            the endpoint serves.
        routing_key: Requests with the same key reach the same variant while weights hold.
        protocol: ``"sagemaker"``, ``"v2-rest"`` or ``"v2-grpc"``; for metrics and capture.
        caller_inference_id: The id the caller gave the request (SageMaker ``InferenceId``),
            captured beside ours so that ground truth labelled by it finds the prediction;
            None when not given.
    """

    endpoint: str
    inference_id: str
    target_variant: str | None = None
    target_version: str | None = None
    routing_key: str | None = None
    protocol: str = "sagemaker"
    caller_inference_id: str | None = None


@dataclass(frozen=True, slots=True)
class Predicted:
    """A prediction made before its call went through the stack: a shadow's copies are
    predicted together in one batch, then each goes through the layers below the fan-out
    (metrics, capture) as a call of its own, which the innermost handler answers with this.

    Attributes:
        out: The predictions for the call's rows, or None when the model raised.
        error: What the model raised (a ``ModelFailure``), or None.
        seconds: How long the prediction took: the latency the layers record.
    """

    out: np.ndarray | None
    error: BaseException | None
    seconds: float

    def result(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        assert self.out is not None
        return self.out


@dataclass(slots=True)
class Call:
    """One prediction on its way through the stack.

    ``predicted``: None, except for a call whose prediction was made already (a shadow's copy,
    see :class:`Predicted`); layers that time the inner handler take its ``seconds`` instead.
    """

    meta: RequestMeta
    selection: Selection
    rows: Any  # a 2-D float array, or a DataFrame for models that take text columns
    predicted: Predicted | None = None


Handler = Callable[[Call], Awaitable[np.ndarray]]


class Wrapper(Protocol):
    """One layer of the predict stack."""

    def wrap(self, inner: Handler) -> Handler:
        """Return a handler that does this layer's work around ``inner``.

        The returned handler must call ``inner`` at most once per call for the answering
        variant and return (or raise) what the answering variant's prediction gives, so that
        layers compose in any order.
        """
        ...


async def batched(call: Call) -> np.ndarray:
    """The innermost handler: the answering variant's micro-batcher.

    Raises:
        ModelFailure: the model raised on these rows.
    """
    if call.predicted is not None:
        return call.predicted.result()
    return await call.selection.variant.batcher.predict(call.rows)


def assemble(wrappers: Sequence[Wrapper], inner: Handler = batched) -> Handler:
    """Wrap ``inner`` in ``wrappers``; the first wrapper is the outermost."""
    handler = inner
    for wrapper in reversed(wrappers):
        handler = wrapper.wrap(handler)
    return handler
