"""The inference core: every protocol adapter (SageMaker, V2 REST, V2 gRPC) calls this.

An adapter parses its transport, then:

    with core.choose(meta) as lease:        # the variant is chosen; in-flight count starts
        rows = decode(body, lease.signature)  # the adapter's codec, for the chosen model
        predictions = await lease.predict(rows)
        ... encode, send (lease.variant_name, lease.model_ref, lease.inference_id)
                                            # in-flight count ends with the response

The core holds the rules: which endpoint, which variant (the endpoint's traffic policy or the
caller's target), whether it is ready, and what a model failure becomes. The in-flight count of
the chosen model starts in the same event-loop step as the choice, so the deployer cannot
unload a retired model under a request that has chosen it but is still reading its body.

A :class:`RequestObserver` (the metrics) hears of every request once its outcome is known: when
its lease ends (answered, or failed with the error that decides its status), or when no variant
could be chosen. That is the one place a request's final status is known for every protocol;
adapters only note the body sizes on the lease (``request_bytes``, ``response_bytes``).
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from modelyard.codecs.json_shapes import clip
from modelyard.domain import Signature
from modelyard.errors import (
    EndpointNotFound,
    InvalidInput,
    ModelFailed,
    ModelNotReady,
    SignatureMismatch,
    VariantNotFound,
    VersionNotFound,
)
from modelyard.runtimes.handler import InferenceHandler
from modelyard.serving.batching import ModelFailure
from modelyard.serving.body_deadline import BodyDeadline
from modelyard.serving.deployer import Deployer
from modelyard.serving.routing import Selection
from modelyard.serving.stack import Call, Handler, RequestMeta
from modelyard.serving.table import EndpointRoute, VariantRoute

log = logging.getLogger("modelyard.serving")

_VERSION_DIGITS = 19  # the most a model version number (an int64) has


class RequestObserver(Protocol):
    """Hears of each request's outcome. Called on the event loop: must return at once."""

    def finished(self, lease: Lease, error: BaseException | None) -> None:
        """``lease`` ended: answered (``error`` None) or failed with ``error``."""
        ...

    def refused(self, meta: RequestMeta, error: BaseException) -> None:
        """No variant could be chosen for ``meta`` (unknown endpoint or variant, not ready)."""
        ...


class Lease:
    """A chosen variant, held from the choice until the response is sent.

    Use as a context manager (or call :meth:`release`): while held, the answering model (and
    any shadow's) counts this request as in flight and is not unloaded.
    """

    __slots__ = (
        "_deadline",
        "_handler",
        "_held",
        "_observer",
        "meta",
        "request_bytes",
        "response_bytes",
        "selection",
        "started",
    )

    def __init__(
        self,
        meta: RequestMeta,
        selection: Selection,
        handler: Handler,
        observer: RequestObserver | None = None,
        deadline: BodyDeadline | None = None,
    ) -> None:
        self.meta = meta
        self.selection = selection
        self._handler = handler
        self._observer = observer
        self._deadline = deadline  # how long its prediction is waited for
        self.started = perf_counter()
        #: Body sizes as the adapter read and wrote them; -1 until it says.
        self.request_bytes = -1
        self.response_bytes = -1
        variant = selection.variant
        variant.served.inflight += 1
        variant.inflight += 1
        for shadow in selection.shadows:
            shadow.served.inflight += 1
            shadow.inflight += 1
        self._held = True

    @property
    def variant(self) -> VariantRoute:
        return self.selection.variant

    @property
    def variant_name(self) -> str:
        return self.selection.variant.name

    @property
    def model_ref(self) -> str:
        """``name:version`` of the model version that answers."""
        return self.selection.variant.served.spec.ref

    @property
    def model_version(self) -> int:
        return self.selection.variant.served.spec.version

    @property
    def inference_id(self) -> str:
        return self.meta.inference_id

    @property
    def signature(self) -> Signature | None:
        return self.selection.variant.served.spec.signature

    @property
    def handler(self) -> InferenceHandler | None:
        """The variant's user ``input_fn``/``output_fn`` hooks, if it has any."""
        return self.selection.variant.served.handler

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """Response headers naming the variant and model version that answered."""
        return self.selection.variant.headers

    async def predict(self, rows: Any) -> np.ndarray:
        """Predict ``rows`` through the predict stack.

        Raises:
            SignatureMismatch: the model's runtime refused these rows (values the estimator
                rejects, such as NaN for a model without missing-value support): the
                caller's input, answered 400 with the runtime's reason, not logged as a fault.
            ModelFailed: the model raised (logged here, with the inference id), or did not
                answer within the predict timeout.
        """
        deadline = self._deadline
        task = deadline.enter() if deadline is not None else None
        try:
            return await self._handler(Call(self.meta, self.selection, rows))
        except asyncio.CancelledError:
            if deadline is None or not deadline.timed_out(task):
                raise
            log.error(
                "inference %s on %s (%s) gave up: no prediction within %g s",
                self.meta.inference_id,
                self.meta.endpoint,
                self.model_ref,
                deadline.timeout_s,
            )
            raise ModelFailed(
                f"the model {self.model_ref} did not answer within {deadline.timeout_s:g} s; "
                f"inference id {self.meta.inference_id}"
            ) from None
        except ModelFailure as failure:
            meta = self.meta
            if isinstance(failure.cause, SignatureMismatch):  # the runtime's word on the input
                raise SignatureMismatch(failure.cause.message) from None
            log.error(
                "inference %s on %s (%s) failed",
                meta.inference_id,
                meta.endpoint,
                self.model_ref,
                exc_info=failure.cause,
            )
            raise ModelFailed(
                f"the model {self.model_ref} raised {type(failure.cause).__name__}; "
                f"inference id {meta.inference_id}"
            ) from None
        finally:
            if deadline is not None:
                deadline.leave(task)

    def release(self) -> None:
        """End this request's in-flight count (idempotent)."""
        if self._held:
            self._held = False
            variant = self.selection.variant
            variant.served.inflight -= 1
            variant.inflight -= 1
            for shadow in self.selection.shadows:
                shadow.served.inflight -= 1
                shadow.inflight -= 1

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
        if self._observer is not None:
            self._observer.finished(self, exc)


class DataPlane:
    """Chooses variants and predicts, for every protocol, from the deployer's route table."""

    def __init__(
        self,
        deployer: Deployer,
        handler: Handler,
        observer: RequestObserver | None = None,
        predict_timeout_s: float | None = None,
    ) -> None:
        """``predict_timeout_s``: how long a prediction is waited for (None: for ever); past
        it the request fails with :class:`ModelFailed`."""
        self.deployer = deployer
        self._handler = handler
        self._observer = observer
        # One sweeping timer per loop, not one per request (see ``body_deadline``).
        self._predict_deadline = (
            BodyDeadline(predict_timeout_s) if predict_timeout_s is not None else None
        )

    def choose(self, meta: RequestMeta) -> Lease:
        """Choose the variant that answers ``meta`` and start its in-flight count.

        Raises:
            EndpointNotFound: no such endpoint is deployed.
            ModelNotReady: it is deployed but its model is not loaded in this server.
            VariantNotFound: ``target_variant`` names no variant of the endpoint.
            VersionNotFound: ``target_version`` names no variant or served model version.
        """
        try:
            route = self.endpoint(meta.endpoint)
            if meta.target_variant is not None:
                selection = Selection(self._variant(route, meta.target_variant))
            elif meta.target_version is not None:
                selection = Selection(self.version(route, meta.target_version))
            else:
                selection = route.select(meta.routing_key)
        except Exception as exc:
            self.refuse(meta, exc)
            raise
        return Lease(meta, selection, self._handler, self._observer, self._predict_deadline)

    def refuse(self, meta: RequestMeta, error: BaseException) -> None:
        """Count a request refused before a variant was chosen: its endpoint unknown, or its
        bytes unreadable before its endpoint could be read (``meta.endpoint`` then empty)."""
        if self._observer is not None:
            self._observer.refused(meta, error)

    def endpoint(self, name: str) -> EndpointRoute:
        """The route of endpoint ``name``.

        Raises:
            EndpointNotFound, ModelNotReady.
        """
        deployer = self.deployer
        route = deployer.table.endpoints.get(name)
        if route is not None:
            return route
        if name in deployer.failures:
            raise ModelNotReady(f"endpoint {name!r} is not ready: {deployer.failures[name]}")
        if name in deployer.loading:  # deployed since the last swap: its models are loading
            raise ModelNotReady(f"endpoint {name!r} is not ready: {deployer.loading[name]}")
        if not deployer.loaded:
            raise ModelNotReady("the server has not loaded its deployment plan yet")
        raise EndpointNotFound(f"endpoint {name!r} is not deployed")

    def version(self, route: EndpointRoute, version: str) -> VariantRoute:
        """The variant a V2 ``version`` names: the number of a model version a production
        variant serves, else a variant name (a shadow's too: the caller asks for it by name,
        to try it). The number comes first because the model metadata lists it as a version
        a request may name (``catalog.served_versions``): a variant named ``1`` serving
        version 2 does not take ``1`` from the variant serving version 1 (it is reached by
        its name when no production variant serves that number). A number only shadows serve
        names none: V2 clients read the numbers from the metadata, which lists production's
        only, and may pick one, the highest say, without knowing it is a shadow's.

        Raises:
            VersionNotFound: neither (for a shadow's number, saying so and how to name it);
                ModelNotReady: that version failed to load here; InvalidInput: production
                variants of two models serve that number (a number is a version first, so
                a variant named so does not settle it).
        """
        digits = version.lstrip("0") if version.isascii() and version.isdigit() else None
        found: list[VariantRoute] = []
        # A caller's string: past 4300 digits int() raises (a 500), and no version number
        # the store gives has more than an int64's 19.
        if digits is not None and len(digits) <= _VERSION_DIGITS:
            number = int(digits or "0")
            found = [v for v in route.variants.values() if v.served.spec.version == number]
            production = [v for v in found if v.shadow is None]
            models = {v.served.spec.ref for v in production}
            if len(models) == 1:
                return production[0]
            if models:
                # Two models' versions of one number (an A/B of churn-xgb:3 and churn-lgbm:3):
                # answering with either would be a guess the caller cannot see.
                serving = ", ".join(f"{v.served.spec.ref} (variant {v.name!r})" for v in production)
                raise InvalidInput(
                    f"version {number} of endpoint {route.name!r} is ambiguous: {serving} "
                    "serve it; name the variant as the version instead"
                )
        variant = route.variants.get(version)
        if variant is not None:
            return variant
        if found:  # only shadows serve that number
            shadow = found[0]
            raise VersionNotFound(
                f"endpoint {route.name!r} serves model version {shadow.served.spec.version} "
                f"only in shadow variant {shadow.name!r} ({shadow.served.spec.ref}), which "
                "answers no request by version number: a shadow is sent copies of the "
                f"production variants' requests. Name the variant (version {shadow.name!r}) "
                f"to try it; the versions callers are answered by: "
                f"{', '.join(map(str, route.production_versions()))}"
            )
        failure = self.deployer.failures.get(route.name)
        if failure is not None:
            raise ModelNotReady(f"endpoint {route.name!r} is not ready: {failure}")
        served = ", ".join(f"{v.name} ({v.served.spec.ref})" for v in route.variants.values())
        raise VersionNotFound(
            f"endpoint {route.name!r} has no variant or model version {clip(version, 130)}; "
            f"it serves {served}"
        )

    @staticmethod
    def _variant(route: EndpointRoute, name: str) -> VariantRoute:
        variant = route.variants.get(name)
        if variant is None:
            raise VariantNotFound(
                f"endpoint {route.name!r} has no variant {name!r}; "
                f"its variants: {', '.join(route.variants)}"
            )
        return variant
