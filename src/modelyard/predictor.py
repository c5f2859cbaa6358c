"""Deploy and predict from Python, the way the SageMaker SDK does::

    from modelyard import Estimator, CSVSerializer
    est = Estimator("xgboost", model_name="churn", target="label").fit(train="train.csv")
    predictor = est.deploy(endpoint_name="churn-api", variant_name="main")
    predictor.serializer = CSVSerializer()
    predictor.predict([[0.1, 0.2, 0.3]])
    predictor.feedback(labels=[1])      # ground truth for the last prediction's rows
    predictor.update_endpoint("churn:3")
    predictor.delete_endpoint()

or, from a registered version, ``modelyard.deploy("churn@production", endpoint_name=…)``.

A thin adapter: endpoint changes go through ``EndpointService`` (loaded and checked in this
process first, as ``modelyard endpoints`` does), the wait through ``ServerService`` (a live
server reports the new plan, without a failure for the endpoint), and invocations over HTTP to
``serving_url`` (the settings' ``MODELYARD_SERVING_URL``, default ``http://127.0.0.1:8080``).
Error answers (SageMaker's shape: ``x-amzn-ErrorType`` and a top-level ``message``) become the
matching :mod:`modelyard.errors` class.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from modelyard.data_capture import DataCaptureConfig
from modelyard.domain import CaptureConfig, ModelRef, ModelVersion
from modelyard.domain import Predictor as PredictorChoice
from modelyard.domain.capture import KeepCapture
from modelyard.domain.feedback import FeedbackResult, parse_items
from modelyard.errors import (
    ConfigError,
    InvalidInput,
    ModelFailed,
    ModelNotReady,
    ModelyardError,
    ServerTimeout,
    ServerUnreachable,
    StorageUnavailable,
)
from modelyard.redaction import mask_client_url, redact_client
from modelyard.sdk_instances import sdk_instances
from modelyard.serializers import BaseDeserializer, BaseSerializer, JSONDeserializer, JSONSerializer

if TYPE_CHECKING:
    from modelyard.bootstrap import Platform

#: SageMaker's name for the one variant of an endpoint deployed from a model.
DEFAULT_VARIANT = "AllTraffic"
DEFAULT_TIMEOUT_S = 60.0

#: InvokeEndpoint's request fields that travel as headers, with the names botocore gives
#: them, so that ``initial_args`` reach the server as boto3's ``invoke_endpoint`` sends them.
_REQUEST_HEADERS = {
    "ContentType": "content-type",
    "Accept": "accept",
    "CustomAttributes": "x-amzn-sagemaker-custom-attributes",
    "TargetModel": "x-amzn-sagemaker-target-model",
    "TargetVariant": "x-amzn-sagemaker-target-variant",
    "TargetContainerHostname": "x-amzn-sagemaker-target-container-hostname",
    "InferenceId": "x-amzn-sagemaker-inference-id",
    "EnableExplanations": "x-amzn-sagemaker-enable-explanations",
    "InferenceComponentName": "x-amzn-sagemaker-inference-component",
    "SessionId": "x-amzn-sagemaker-session-id",
}

#: ``x-amzn-ErrorType`` → the error, for an answer without modelyard's ``error_code``.
_BY_ERROR_TYPE: dict[str, type[ModelyardError]] = {
    "ValidationError": InvalidInput,
    "ModelError": ModelFailed,
    "ModelNotReadyException": ModelNotReady,
    "ServiceUnavailable": StorageUnavailable,
}


class Predictor:
    """Invokes one endpoint on a modelyard server, and changes or deletes that endpoint.

    Attributes:
        endpoint_name: The endpoint.
        serializer: Turns ``predict``'s data into a request body (default JSON).
        deserializer: Turns the answer into Python objects (default JSON).
        component_name: The inference component every :meth:`predict` names, or None.
        serving_url: The server (or load balancer) invocations go to.
        last_inference_id: The inference id of the last answer :meth:`predict` got (the
            ``x-modelyard-inference-id`` header), for :meth:`feedback`; None before.
    """

    def __init__(
        self,
        endpoint_name: str,
        sagemaker_session: Platform | None = None,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        component_name: str | None = None,
        *,
        serving_url: str | None = None,
        platform: Platform | None = None,
        request_timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        """The SageMaker SDK's arguments, in its order, then modelyard's.

        Args:
            endpoint_name: The endpoint to invoke.
            sagemaker_session: The SDK's session: a modelyard Platform (as ``platform``) or
                None.
            serializer: Default :class:`~modelyard.serializers.JSONSerializer`.
            deserializer: Default :class:`~modelyard.serializers.JSONDeserializer`.
            component_name: The SDK's inference component, sent with every :meth:`predict`
                as its ``component_name`` (a modelyard endpoint refuses it, as the runtime
                does on an endpoint of one model per variant).
            serving_url: The server; default the platform's or the settings'.
            platform: The store for :meth:`update_endpoint` and the rest.
            request_timeout: Seconds to wait for an answer.

        Raises:
            InvalidInput: ``sagemaker_session`` is not a Platform (a SageMaker SDK Session),
                or both it and ``platform`` are given.
        """
        if sagemaker_session is not None:
            from modelyard.estimator import platform_of

            if platform is not None:
                raise InvalidInput("give sagemaker_session or platform, not both")
            platform = platform_of(sagemaker_session)
        self.endpoint_name = endpoint_name
        self.serializer = serializer or JSONSerializer()
        self.deserializer = deserializer or JSONDeserializer()
        self.component_name = component_name
        self._platform = platform
        self._owns_platform = False
        if serving_url is None:
            serving_url = platform.settings.serving_url if platform else _settings_url()
        self.serving_url = serving_url.rstrip("/")
        self._timeout = request_timeout
        self._http: httpx.Client | None = None
        self.last_inference_id: str | None = None
        # The endpoint that answered with last_inference_id: an EndpointName in initial_args
        # sends a request elsewhere, and its labels must follow it there.
        self._last_endpoint: str | None = None

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` of requests (the serializer's)."""
        return self.serializer.CONTENT_TYPE

    @property
    def accept(self) -> tuple[str, ...]:
        """The media types asked for (the deserializer's)."""
        return self.deserializer.ACCEPT

    # -- invoking ----------------------------------------------------------------------------

    def predict(
        self,
        data: Any,
        initial_args: Mapping[str, str] | None = None,
        target_model: str | None = None,
        target_variant: str | None = None,
        inference_id: str | None = None,
        custom_attributes: str | None = None,
        component_name: str | None = None,
    ) -> Any:
        """Send ``data`` (serialized) to the endpoint and return the deserialized answer.

        The arguments are the SageMaker SDK's ``Predictor.predict``'s, sent as boto3's
        ``invoke_endpoint`` sends them (see the README's Invocation API for what a modelyard
        server does with each).

        Args:
            data: What the serializer takes (rows, an array, a DataFrame, a body).
            initial_args: InvokeEndpoint request fields (``ContentType``, ``Accept``,
                ``TargetVariant``, ``CustomAttributes``, ``InferenceId`` …); ``ContentType``
                and ``Accept`` instead of the serializers', the arguments below over these.
            target_model: InvokeEndpoint's ``TargetModel`` (sent as boto3 sends it; a
                modelyard endpoint, one model per variant, refuses it, as the runtime does
                on such an endpoint: name a variant with ``target_variant``).
            target_variant: Ask this variant, not the weighted choice.
            inference_id: InvokeEndpoint's ``InferenceId``.
            custom_attributes: InvokeEndpoint's ``CustomAttributes``.
            component_name: InvokeEndpoint's ``InferenceComponentName``, default the
                predictor's (refused by a modelyard endpoint, as ``target_model``).

        Raises:
            InvalidInput: ``initial_args`` holds a field InvokeEndpoint does not take as a
                header (the body is the serializer's, the endpoint this predictor's), or a
                field that is not text of printable US-ASCII characters (a header's value).
            ServerUnreachable: nothing answers at ``serving_url``; ServerTimeout (one): no answer
                within the predictor's timeout.
            The error the server answered with: InvalidInput (bad data), NotFound (no such
            endpoint or variant), ModelNotReady (not loaded there), ModelFailed (the model
            raised), …
        """
        args = {"ContentType": self.content_type, "Accept": ", ".join(self.accept)}
        args.update(initial_args or {})
        # As the SDK's request arguments: an EndpointName there is the endpoint invoked, and
        # a Body there is replaced by ``data``.
        endpoint = args.pop("EndpointName", None) or self.endpoint_name
        args.pop("Body", None)
        given = {
            "TargetModel": target_model,
            "TargetVariant": target_variant,
            "InferenceId": inference_id,
            "CustomAttributes": custom_attributes,
            "InferenceComponentName": component_name or self.component_name,
        }
        args.update({field: value for field, value in given.items() if value})
        unknown = sorted(set(args) - set(_REQUEST_HEADERS))
        if unknown:
            raise InvalidInput(
                f"initial_args cannot hold {', '.join(unknown)}: InvokeEndpoint's fields here "
                f"are {', '.join(_REQUEST_HEADERS)}"
            )
        headers = {
            _REQUEST_HEADERS[field]: _header(field, value) for field, value in args.items() if value
        }
        response = self._post(self.serializer.serialize(data), headers, endpoint=endpoint)
        self.last_inference_id = response.headers.get("x-modelyard-inference-id")
        self._last_endpoint = endpoint
        media = response.headers.get("content-type", "")
        return self.deserializer.deserialize(io.BytesIO(response.content), media)

    def feedback(
        self,
        items: Iterable[Mapping[str, Any]] | None = None,
        *,
        labels: Sequence[Any] | None = None,
        inference_id: str | None = None,
    ) -> FeedbackResult:
        """Send ground truth for this endpoint's past predictions (``POST
        /endpoints/{name}/feedback``); ``modelyard monitor quality`` then scores them.

        Args:
            items: Labels by inference id: ``[{"inference_id": …, "label": …, "row": …}]``
                (``row``: the row's index in its request, needed when it had several); the
                id is ours or the ``InferenceId`` the request was sent with.
            labels: Instead of ``items``: the labels of the rows of one request, in order.
            inference_id: That request (default: the last :meth:`predict`'s, and then the
                labels go to the endpoint it invoked, which an ``EndpointName`` in its
                ``initial_args`` may have named).

        Returns:
            Each item's outcome: accepted, unknown (no captured prediction has that id and
            row: an endpoint captures the share of its requests set by ``capture``),
            expired (too old) or ambiguous (an ``InferenceId`` several requests were sent
            with: nothing stored).

        Raises:
            InvalidInput: malformed items, ``labels`` or ``items`` that are not one list
                (a string, a mapping, a DataFrame: nothing is sent), or a label the model
                cannot have (nothing is stored); EndpointNotFound; PayloadTooLarge: over
                10,000 items; ServerUnreachable.
        """
        if (items is None) == (labels is None):
            raise InvalidInput("give either items or labels")
        endpoint = None
        if items is not None:
            _check_listed(items, "items", "a list of {inference_id, label[, row]} items")
        if labels is not None:
            _check_listed(labels, "labels", "one list of labels, one a row of the request")
            if inference_id is None:
                inference_id, endpoint = self.last_inference_id, self._last_endpoint
            if inference_id is None:
                raise InvalidInput("labels need an inference_id: no prediction was made yet")
            items = [
                {"inference_id": inference_id, "row": row, "label": label}
                for row, label in enumerate(labels)
            ]
        body = JSONSerializer().serialize({"feedback": list(items or ())})
        # Checked as the server checks them, on the JSON they became: a NaN or infinite label
        # (a missing one in a pandas column) is written as NaN, which no JSON parser takes,
        # and the server could only say the body was not JSON.
        parse_items(json.loads(body)["feedback"])
        headers = {"content-type": "application/json", "accept": "application/json"}
        response = self._post(body, headers, route="feedback", endpoint=endpoint)
        return FeedbackResult.from_dict(response.json())

    def _post(
        self,
        body: bytes,
        headers: dict[str, str],
        route: str = "invocations",
        endpoint: str | None = None,
    ) -> httpx.Response:
        if self._http is None:
            self._http = httpx.Client(timeout=self._timeout)
        name = self.endpoint_name if endpoint is None else endpoint
        target = f"{self.serving_url}/endpoints/{quote(name, safe='')}/{route}"
        shown = mask_client_url(self.serving_url)  # a gateway's password is no part of a message
        try:
            response = self._http.post(target, content=body, headers=headers)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            reason = redact_client(str(exc), self.serving_url)
            raise ConfigError(f"invalid serving URL {shown!r}: {reason}") from None
        except httpx.TimeoutException:
            raise ServerTimeout(f"no answer from {shown} within {self._timeout:g} s") from None
        except httpx.TransportError as exc:
            reason = redact_client(str(exc) or type(exc).__name__, self.serving_url)
            raise ServerUnreachable(
                f"cannot reach the modelyard server at {shown} "
                f"({reason}); is it running ('modelyard serve')?"
            ) from None
        if response.is_success:
            return response
        raise error_from_answer(response)

    # -- changing the endpoint ---------------------------------------------------------------

    def wait(self, revision: int | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> Predictor:
        """Wait until a live server serves this endpoint as of plan ``revision`` (default:
        the store's current one) with no failure to load it; returns self.

        Raises:
            ModelLoadFailed: a server applied the change but could not load the model (the
                message has its reason); it keeps serving what it served before.
            NoServerRunning: no server reports to the store (start ``modelyard serve``).
            ModelNotReady: servers did not get there within ``timeout`` seconds.
        """
        servers = self._get_platform().servers
        if revision is None:
            revision = servers.plan_revision()
        servers.wait_until_served(self.endpoint_name, revision, timeout=timeout)
        return self

    def update_endpoint(
        self,
        model: str | ModelVersion | None = None,
        *,
        variant_name: str = DEFAULT_VARIANT,
        variants: Mapping[str, str | ModelVersion] | None = None,
        weights: Mapping[str, float] | None = None,
        shadows: Mapping[str, float] | None = None,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        model_name: str | ModelVersion | None = None,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        data_capture_config_dict: Mapping[str, Any] | None = None,
    ) -> None:
        """Serve new models, or change only the traffic weights.

        New models keep the endpoint's capture, as the SageMaker SDK's ``update_endpoint``
        keeps an endpoint's ``DataCaptureConfig`` (:class:`~modelyard.domain.capture.KeepCapture`):
        each variant the share of the current variant of its name, else the largest current
        share, and every current redaction on a field its model has.

        Args:
            model: Serve this model (``"churn:3"``, ``"churn@production"``, a version) as the
                one variant ``variant_name``.
            variant_name: The variant's name when ``model`` is given.
            variants: Several variants instead: variant name → model.
            weights: Relative traffic weights per production variant; alone, only the
                weights change (no model is reloaded).
            shadows: With ``variants``: variant name → sampling percentage (0-100) of the
                variants that are shadows (answering nothing, getting a copy of that share
                of the requests; they take no weight).
            wait: Wait until a live server serves the change (see :meth:`wait`).
            timeout: How long to wait, in seconds.
            model_name: The SageMaker SDK's name for ``model`` (not with it).
            initial_instance_count, instance_type: The SDK's machines, taken as
                :func:`deploy` takes them (with a warning when they ask for what a server
                cannot give); given alone, they change nothing.
            data_capture_config_dict: The SageMaker API's ``DataCaptureConfig`` (see
                :meth:`DataCaptureConfig.from_request_dict`): the share the new models
                capture, or, given without models, the endpoint's new share (as
                :meth:`update_data_capture_config`).

        Raises:
            InvalidInput: neither a model, variants nor weights (nor instance fields); both a
                model and variants, or ``model`` and ``model_name``; shadows without a model
                or variants; instance fields :func:`deploy` refuses; a capture dict the API
                would refuse, or given with weights alone.
            What ``EndpointService`` raises (a model that cannot load changes nothing), and
            what :meth:`wait` raises.
        """
        if model_name is not None:
            if model is not None:
                raise InvalidInput("give model or model_name (the SDK's name for it), not both")
            model = model_name
        _sdk_instances(initial_instance_count, instance_type)
        captured = (
            None
            if data_capture_config_dict is None
            else DataCaptureConfig.from_request_dict(data_capture_config_dict).capture().percent
        )
        changes = (model, variants, weights, shadows)
        machines = (initial_instance_count, instance_type)
        if all(c is None for c in changes):
            if captured is not None:
                self._get_platform().endpoints.set_capture(self.endpoint_name, captured)
                if wait:
                    self.wait(timeout=timeout)
                return
            if any(m is not None for m in machines):
                return  # the SDK's scaling call: nothing a server here changes
        endpoints = self._get_platform().endpoints
        if model is not None and variants is not None:
            raise InvalidInput("give either a model or variants, not both")
        if model is not None:
            variants = {variant_name: model}
        if variants is not None:
            endpoints.update(
                self.endpoint_name,
                _refs(variants),
                weights,
                capture=KeepCapture(captured),
                shadows=shadows,
            )
        elif captured is not None:
            raise InvalidInput(
                "a capture config goes with new models or alone, not with weights alone: "
                "change the weights and the capture one after the other"
            )
        elif shadows is not None:
            raise InvalidInput("shadows go with the variants of a new config; give variants")
        elif weights is not None:
            endpoints.set_weights(self.endpoint_name, weights)
        else:
            raise InvalidInput("update_endpoint needs a model, variants or weights")
        if wait:
            self.wait(timeout=timeout)

    def update_data_capture_config(
        self, data_capture_config: DataCaptureConfig | None = None
    ) -> None:
        """Capture the share of requests ``data_capture_config`` says (None: none), on every
        variant of the endpoint, each keeping its redactions; no model is reloaded. As the
        SageMaker SDK's ``Predictor.update_data_capture_config``, it returns once the change
        is made (servers apply it within their next plan poll).

        Raises:
            InvalidName, EndpointNotFound, Conflict.
        """
        config = data_capture_config or DataCaptureConfig(enable_capture=False)
        self._get_platform().endpoints.set_capture(self.endpoint_name, config.capture().percent)

    def enable_data_capture(self) -> None:
        """Capture 20% of the requests (the SDK's default share): see
        :meth:`update_data_capture_config` for another share."""
        self.update_data_capture_config(DataCaptureConfig(enable_capture=True))

    def disable_data_capture(self) -> None:
        """Capture no more requests (their redaction settings are kept for later)."""
        self.update_data_capture_config(DataCaptureConfig(enable_capture=False))

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Delete the endpoint and its history; servers stop serving it within a second or two.

        Args:
            delete_endpoint_config: The SageMaker SDK's flag for deleting the endpoint's
                config too. An endpoint's configs here are its history and go with it, so
                False (keep them) is taken with a warning saying they cannot be kept.

        Raises:
            InvalidInput: ``delete_endpoint_config`` not a bool (nothing deleted).
            EndpointNotFound.
        """
        if not isinstance(delete_endpoint_config, bool):
            raise InvalidInput(
                f"delete_endpoint_config must be True or False, got {delete_endpoint_config!r}"
            )
        if not delete_endpoint_config:
            warnings.warn(
                f"delete_endpoint_config=False cannot keep endpoint {self.endpoint_name!r}'s "
                "configs: its configs are its history and go with it",
                UserWarning,
                stacklevel=2,
            )
        self._get_platform().endpoints.delete(self.endpoint_name)

    def delete_model(self) -> None:
        """The SageMaker SDK's ``delete_model``, which deletes the SageMaker Model resources
        behind the endpoint (not the model data in S3): a modelyard endpoint names registered
        versions directly, with no such resource, so there is nothing to delete, and the
        versions stay registered, as S3's model data stays (archive or delete one with the
        registry). Kept so that SDK clean-up code runs as it is."""

    # -- resources ---------------------------------------------------------------------------

    def _get_platform(self) -> Platform:
        if self._platform is None:
            from modelyard.bootstrap import build

            self._platform = build()
            self._owns_platform = True
        return self._platform

    def close(self) -> None:
        """Close the HTTP connections (and the stores, if this predictor opened them)."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._owns_platform and self._platform is not None:
            self._platform.close()
            self._platform = None

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Predictor({self.endpoint_name!r}, serving_url={mask_client_url(self.serving_url)!r})"
        )


def deploy(
    model: str | ModelVersion,
    endpoint_name: str | None = None,
    *,
    variant_name: str = DEFAULT_VARIANT,
    serializer: BaseSerializer | None = None,
    deserializer: BaseDeserializer | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    serving_url: str | None = None,
    platform: Platform | None = None,
    predictor: str = "auto",
    capture: float = 0.0,
    capture_redact: Sequence[str] = (),
    data_capture_config: DataCaptureConfig | None = None,
    initial_instance_count: int | None = None,
    instance_type: str | None = None,
) -> Predictor:
    """Serve a registered model at an endpoint (created, or updated if it exists) and return
    a :class:`Predictor` for it.

    Args:
        model: ``"churn:3"``, ``"churn@production"``, ``"churn"`` (the latest), or a version.
        endpoint_name: Default: the model's name.
        variant_name: The endpoint's one variant (SageMaker's ``AllTraffic`` by default).
        serializer, deserializer: The predictor's (default JSON both ways).
        wait: Wait until a live server serves it (see :meth:`Predictor.wait`).
        timeout: How long to wait, in seconds.
        serving_url: Where invocations go (default: the settings' ``serving_url``).
        platform: The stores and services to use (default: built from the settings).
        predictor: How the server runs the model: ``"auto"`` (the compiled tree ensemble when
            it converts and predicts exactly as the native model, else the native library),
            ``"native"``, or ``"compiled"`` (refused up front when the model cannot have it).
        capture: The percentage (0-100) of requests whose inputs, outputs, latency and time
            are recorded (read them with ``open_platform().capture``); 0: off.
        capture_redact: Input fields whose captured values are replaced: ``"ssn"`` or
            ``"ssn:hash"`` (a salted SHA-256), ``"ssn:drop"`` (null).
        data_capture_config: The SageMaker SDK's way of saying ``capture``
            (:class:`~modelyard.data_capture.DataCaptureConfig`); not with ``capture``.
        initial_instance_count, instance_type: The SageMaker SDK's machines for the endpoint,
            taken so that SDK code runs as it is: every ``modelyard serve`` sharing the store
            serves every endpoint, so a count above 1 or a cloud instance type is taken with a
            warning saying so (``"local"`` and ``"local_cpu"``, the SDK's local mode, without).

    Raises:
        InvalidInput: ``predictor`` is not one of those, or ``"compiled"`` and the model
            cannot be compiled (the message says why); ``capture`` is not within 0-100, or
            ``capture_redact`` names a field the model does not take; both ``capture`` and
            ``data_capture_config``; ``endpoint_name`` not a text (the SDK's positional
            ``initial_instance_count``), a count below 1 or an empty instance type; nothing is
            deployed.
        What ``EndpointService.deploy`` raises (the model is loaded and checked first),
        and what :meth:`Predictor.wait` raises.
    """
    if endpoint_name is not None and not isinstance(endpoint_name, str):
        raise InvalidInput(
            f"endpoint_name must be a name, got {endpoint_name!r}; the SageMaker SDK's "
            "initial_instance_count and instance_type go as keywords"
        )
    _sdk_instances(initial_instance_count, instance_type)
    ref = _ref(model)
    choice = PredictorChoice.parse(predictor)
    if isinstance(capture_redact, str):
        capture_redact = [capture_redact]
    if data_capture_config is None:
        recording = CaptureConfig.parse(capture, capture_redact)
    elif capture:
        raise InvalidInput("give capture or data_capture_config, not both")
    else:
        recording = data_capture_config.capture(capture_redact)
    client = Predictor(
        endpoint_name or ModelRef.parse(ref).name,
        serializer=serializer,
        deserializer=deserializer,
        serving_url=serving_url,
        platform=platform,
    )
    client._get_platform().endpoints.deploy(
        client.endpoint_name,
        {variant_name: ref},
        predictors={variant_name: choice},
        capture={variant_name: recording},
    )
    if wait:
        client.wait(timeout=timeout)
    return client


def _sdk_instances(count: object, instance_type: object) -> None:
    """Check the SageMaker SDK's ``initial_instance_count`` and ``instance_type`` (None: not
    given) and say, with a warning, what they cannot mean here."""
    sdk_instances(
        count,
        instance_type,
        count_name="initial_instance_count",
        count_unused="every `modelyard serve` that shares this store serves the endpoint "
        "(more workers: `modelyard serve --workers N`; more machines: more servers)",
        type_unused="the endpoint runs on the machines running `modelyard serve`",
        stacklevel=4,
    )


def _check_listed(value: object, name: str, wanted: str) -> None:
    """Refuse a ``value`` for :meth:`Predictor.feedback`'s ``name`` that is not one list-like
    of entries: a string, bytes, a mapping, a table (a DataFrame, a 2-D array) or a scalar.
    Iterated, those gave characters, keys or column names, and the first became row 0's
    label, stored as accepted."""
    flat = getattr(value, "ndim", 1) == 1  # a DataFrame or 2-D array has ndim 2, a scalar 0
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable) or not flat:
        shown = type(value).__name__
        raise InvalidInput(f"{name} must be {wanted}, got a {shown}: {str(value)[:60]!r}")


def _header(field: str, value: object) -> str:
    """A request field as its header's value: printable US-ASCII text, as InvokeEndpoint's
    fields are (anything else would fail in the HTTP client, or reach the server mangled)."""
    if not isinstance(value, str) or not all(" " <= char <= "~" for char in value):
        raise InvalidInput(
            f"{field} must be text of printable US-ASCII characters (it travels in an HTTP "
            f"header), got {value!r}"
        )
    return value


def _ref(model: str | ModelVersion) -> str:
    return model.ref if isinstance(model, ModelVersion) else model


def _refs(variants: Mapping[str, str | ModelVersion]) -> dict[str, str]:
    return {name: _ref(model) for name, model in variants.items()}


def _settings_url() -> str:
    from modelyard.config import load_settings

    return load_settings().serving_url


def _error_classes() -> dict[str, type[ModelyardError]]:
    found: dict[str, type[ModelyardError]] = {}
    pending: list[type[ModelyardError]] = [ModelyardError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_from_answer(response: httpx.Response) -> ModelyardError:
    """The modelyard error an error answer stands for: by the ``error_code`` a modelyard
    server puts in the body, else by SageMaker's ``x-amzn-ErrorType``, else by status; the
    message is the body's top-level ``message`` (SageMaker's shape) when there is one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        url = str(response.url)
        text = redact_client(text, url)
        message = f"{mask_client_url(url)} answered HTTP {response.status_code}" + (
            f": {text}" if text else ""
        )
    cls = _error_classes().get(str(body.get("error_code")))
    if cls is None:
        cls = _BY_ERROR_TYPE.get(response.headers.get("x-amzn-errortype", ""))
    if cls is None:
        cls = InvalidInput if 400 <= response.status_code < 500 else ModelyardError
    return cls(message)
