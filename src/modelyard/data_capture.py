"""``DataCaptureConfig``: the SageMaker Python SDK's data capture settings, for code that
deploys with them (``deploy(..., data_capture_config=...)``, ``Predictor.
update_data_capture_config``).

The SDK's arguments mean here what they mean there, as far as a server of ours can honour
them: ``enable_capture`` and ``sampling_percentage`` set the endpoint's capture share, and
``capture_options`` must keep both the request and the response (a server records a call's
inputs and outputs together; one alone is refused rather than recorded in full). Where the
rows go is the servers' ``MODELYARD_CAPTURE_URL``, not a per-endpoint ``destination_s3_uri``,
and encryption at rest is the store's, so those two (and ``kms_key_id``) are taken with a
warning saying so. The content-type lists only tell SageMaker which bodies to keep as text:
rows are captured decoded whatever their content type, so they change nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.domain.capture import CaptureConfig
from modelyard.domain.numbers import real_value, shown_value
from modelyard.errors import InvalidInput

#: The SDK's capture options, and the API's names for them (``CaptureMode``).
_OPTIONS = {"REQUEST": "REQUEST", "RESPONSE": "RESPONSE", "INPUT": "REQUEST", "OUTPUT": "RESPONSE"}
_BOTH = frozenset({"REQUEST", "RESPONSE"})
#: The fields of the SageMaker API's ``DataCaptureConfig``.
_REQUEST_KEYS = (
    "EnableCapture",
    "InitialSamplingPercentage",
    "DestinationS3Uri",
    "KmsKeyId",
    "CaptureOptions",
    "CaptureContentTypeHeader",
)


@dataclass(frozen=True)
class DataCaptureConfig:
    """Data capture settings, as ``sagemaker.model_monitor.DataCaptureConfig`` takes them.

    Args:
        enable_capture: Whether requests are captured at all.
        sampling_percentage: The share of requests captured, 0-100 (default 20, as the SDK's).
        destination_s3_uri: Taken with a warning: rows go to the servers' capture root.
        kms_key_id: Taken with a warning: encryption at rest is the store's.
        capture_options: ``["REQUEST", "RESPONSE"]`` (the default; the API's ``Input`` and
            ``Output`` too); one alone is refused.
        csv_content_types, json_content_types: Taken; rows are captured decoded whatever
            their content type.
        sagemaker_session: Taken and not used (no SageMaker session here).

    Raises:
        InvalidInput: ``enable_capture`` not a bool, a percentage outside 0-100 or not a
            number, or capture options other than both the request and the response.
    """

    enable_capture: bool
    sampling_percentage: float = 20
    destination_s3_uri: str | None = None
    kms_key_id: str | None = None
    capture_options: Sequence[str] | None = None
    csv_content_types: Sequence[str] | None = None
    json_content_types: Sequence[str] | None = None
    sagemaker_session: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.enable_capture, bool):
            raise InvalidInput(f"enable_capture must be True or False, got {self.enable_capture!r}")
        percent = real_value(self.sampling_percentage)
        if percent is None or not 0.0 <= percent <= 100.0:
            raise InvalidInput(
                "the sampling percentage must be a number from 0 to 100, got "
                f"{shown_value(self.sampling_percentage)}"
            )
        options = self.capture_options
        if options is not None:
            if isinstance(options, str) or not all(isinstance(o, str) for o in options):
                raise InvalidInput(
                    f"capture_options must be a list of REQUEST and RESPONSE, got {options!r}"
                )
            if {_OPTIONS.get(o.upper(), o) for o in options} != _BOTH:
                raise InvalidInput(
                    f"capture_options {list(options)} cannot be honoured: a server records a "
                    "call's request and response together; give both (the default)"
                )
        if self.destination_s3_uri is not None:
            warnings.warn(
                "destination_s3_uri is not used: captured rows go to the servers' capture "
                "root (MODELYARD_CAPTURE_URL)",
                UserWarning,
                stacklevel=3,
            )
        if self.kms_key_id is not None:
            warnings.warn(
                "kms_key_id is not used: captured rows are encrypted at rest (or not) by the "
                "store that holds them",
                UserWarning,
                stacklevel=3,
            )

    @classmethod
    def from_request_dict(cls, request: Mapping[str, Any]) -> DataCaptureConfig:
        """The settings a SageMaker API ``DataCaptureConfig`` dict holds (what the SDK's
        ``DataCaptureConfig._to_request_dict`` writes and ``Predictor.update_endpoint``'s
        ``data_capture_config_dict`` takes): ``EnableCapture`` (default true, as the API's),
        ``InitialSamplingPercentage`` (a whole number 0-100) and ``CaptureOptions`` (a list of
        ``{"CaptureMode": "Input" | "Output"}``) are required as the API requires them;
        ``DestinationS3Uri`` (required by the API, not here: rows go to the servers'
        capture root), ``KmsKeyId`` and ``CaptureContentTypeHeader`` are taken as the
        constructor takes them.

        Raises:
            InvalidInput: not a dict, a key the API does not have, a required key missing, or
                a value of the wrong type (and what the constructor refuses).
        """
        if not isinstance(request, Mapping):
            raise InvalidInput(f"a DataCaptureConfig must be a dict, got {request!r}")
        unknown = sorted(str(k) for k in request if k not in _REQUEST_KEYS)
        if unknown:
            raise InvalidInput(
                f"DataCaptureConfig has no field {', '.join(unknown)}; its fields: "
                f"{', '.join(_REQUEST_KEYS)}"
            )
        missing = [k for k in ("InitialSamplingPercentage", "CaptureOptions") if k not in request]
        if missing:
            raise InvalidInput(f"DataCaptureConfig needs {' and '.join(missing)}")
        percent = request["InitialSamplingPercentage"]
        if isinstance(percent, bool) or not isinstance(percent, int):
            raise InvalidInput(
                "InitialSamplingPercentage must be a whole number from 0 to 100, got "
                f"{shown_value(percent)}"
            )
        options = request["CaptureOptions"]
        if not isinstance(options, list) or not all(
            isinstance(o, Mapping) and set(o) == {"CaptureMode"} for o in options
        ):
            raise InvalidInput(
                'CaptureOptions must be a list of {"CaptureMode": "Input" | "Output"}, got '
                f"{options!r}"
            )
        header = request.get("CaptureContentTypeHeader")
        header = {} if header is None else header
        if not isinstance(header, Mapping) or set(header) - {"CsvContentTypes", "JsonContentTypes"}:
            raise InvalidInput(
                "CaptureContentTypeHeader takes CsvContentTypes and JsonContentTypes, got "
                f"{header!r}"
            )
        return cls(
            enable_capture=request.get("EnableCapture", True),
            sampling_percentage=percent,
            destination_s3_uri=request.get("DestinationS3Uri"),
            kms_key_id=request.get("KmsKeyId"),
            capture_options=[o["CaptureMode"] for o in options],
            csv_content_types=header.get("CsvContentTypes"),
            json_content_types=header.get("JsonContentTypes"),
        )

    def capture(self, redact: Sequence[str] = ()) -> CaptureConfig:
        """The endpoint capture setting these stand for (``redact``: fields to redact)."""
        percent = real_value(self.sampling_percentage) if self.enable_capture else 0.0
        return CaptureConfig.parse(percent or 0.0, redact)
