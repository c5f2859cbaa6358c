"""The SageMaker SDK's ``DataCaptureConfig`` in modelyard's Python API: code that deploys
with it, or turns capture on and off on a predictor, sets the endpoint's capture share (each
variant keeping its redactions, no model reloaded); what a server cannot honour is refused or
said, never dropped silently."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelyard
from modelyard import DataCaptureConfig, Predictor
from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig, ConfigChange
from modelyard.errors import EndpointNotFound, InvalidInput


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """``churn:1`` (a logistic regression on a, b, ssn) served at ``api`` by ``blue`` (capturing
    10%, ssn hashed) and ``green`` (no capture), and ``plain:1`` (on a and b) by ``red``."""
    from sklearn.linear_model import LogisticRegression

    p = build(load_settings({}, home=tmp_path / "home", serving_url="http://127.0.0.1:7"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(100, 3)), columns=["a", "b", "ssn"])
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    p.registry.register("churn", model, flavor="sklearn", input_example=frame[:3])
    two = frame[["a", "b"]]
    plain = LogisticRegression().fit(two, (two["a"] > 0).astype(int))
    p.registry.register("plain", plain, flavor="sklearn", input_example=two[:3])
    p.endpoints.create(
        "api",
        {"blue": "churn:1", "green": "churn:1", "red": "plain:1"},
        capture={"blue": CaptureConfig.parse(10, ["ssn"])},
    )
    yield p
    p.close()


def captures(platform: Platform) -> dict[str, tuple[float, list[str]]]:
    variants = platform.endpoints.get("api").config.variants
    return {v.name: (v.capture.percent, [str(r) for r in v.capture.redact]) for v in variants}


def test_the_sdks_defaults_and_its_spellings() -> None:
    assert modelyard.DataCaptureConfig is DataCaptureConfig
    assert DataCaptureConfig(enable_capture=True).capture() == CaptureConfig(20.0)
    assert DataCaptureConfig(False, sampling_percentage=50).capture() == CaptureConfig(0.0)
    both = DataCaptureConfig(True, 35, capture_options=["Input", "RESPONSE"])
    assert both.capture(["ssn:drop"]) == CaptureConfig.parse(35, ["ssn:drop"])
    assert DataCaptureConfig(True, np.int64(5)).capture().percent == 5.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"enable_capture": "yes"}, "enable_capture must be True or False, got 'yes'"),
        ({"enable_capture": True, "sampling_percentage": 101}, "0 to 100, got 101"),
        ({"enable_capture": True, "sampling_percentage": float("nan")}, "0 to 100, got nan"),
        ({"enable_capture": True, "sampling_percentage": "20"}, "0 to 100, got '20'"),
        ({"enable_capture": True, "capture_options": ["REQUEST"]}, "give both"),
        ({"enable_capture": True, "capture_options": "REQUEST"}, "a list of REQUEST and"),
    ],
)
def test_what_cannot_be_honoured_is_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        DataCaptureConfig(**kwargs)  # type: ignore[arg-type]


def test_a_destination_or_key_of_its_own_is_taken_with_a_warning() -> None:
    """Rows go to the servers' capture root; the user is told, not left to look in S3."""
    with pytest.warns(UserWarning, match=r"destination_s3_uri is not used: .*MODELYARD_CAPTURE"):
        DataCaptureConfig(True, destination_s3_uri="s3://bucket/capture")
    with pytest.warns(UserWarning, match="kms_key_id is not used"):
        DataCaptureConfig(True, kms_key_id="alias/capture")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DataCaptureConfig(True, csv_content_types=["text/csv"], json_content_types=["a/b"])


def test_a_predictor_turns_capture_on_and_off_redacting_every_variant(platform: Platform) -> None:
    predictor = Predictor("api", platform=platform)
    predictor.update_data_capture_config(DataCaptureConfig(True, sampling_percentage=60))
    # green captured nothing, so redacted nothing: it takes blue's redaction, or it would
    # start capturing in clear what blue hides.
    # red's model takes no ssn: nothing of it to redact (a redaction of a field its rows lack
    # would keep them from being written at all).
    assert captures(platform) == {
        "blue": (60.0, ["ssn:hash"]), "green": (60.0, ["ssn:hash"]), "red": (60.0, [])
    }  # fmt: skip
    config = platform.endpoints.get("api").config
    assert config.change is ConfigChange.CAPTURE
    assert [v.model_ref for v in config.variants] == ["churn:1", "churn:1", "plain:1"]
    predictor.disable_data_capture()
    assert captures(platform)["green"] == (0.0, ["ssn:hash"])
    predictor.enable_data_capture()  # the SDK's default share
    assert {v: c[0] for v, c in captures(platform).items()} == {
        "blue": 20.0, "green": 20.0, "red": 20.0
    }  # fmt: skip
    predictor.update_data_capture_config(None)
    assert {v: c[0] for v, c in captures(platform).items()} == {"blue": 0, "green": 0, "red": 0}
    with pytest.raises(EndpointNotFound):
        Predictor("nope", platform=platform).enable_data_capture()


def test_deploy_takes_the_sdks_config_but_not_both_ways_at_once(platform: Platform) -> None:
    with pytest.raises(InvalidInput, match="capture or data_capture_config, not both"):
        modelyard.deploy(
            "churn:1", "other", platform=platform, wait=False, capture=10,
            data_capture_config=DataCaptureConfig(True),
        )  # fmt: skip
    with pytest.raises(EndpointNotFound):
        platform.endpoints.get("other")
    modelyard.deploy(
        "churn:1", "other", platform=platform, wait=False, capture_redact=["ssn"],
        data_capture_config=DataCaptureConfig(True, sampling_percentage=15),
    )  # fmt: skip
    (variant,) = platform.endpoints.get("other").config.variants
    assert variant.capture == CaptureConfig.parse(15, ["ssn"])


def test_deploy_takes_the_model_monitor_examples_instance_fields(platform: Platform) -> None:
    # The SageMaker Model Monitor example, as users have it: machines plus a capture config.
    with pytest.warns(UserWarning, match="instance_type 'ml.m4.xlarge' is not used"):
        modelyard.deploy(
            "churn:1", "monitored", platform=platform, wait=False,
            initial_instance_count=1, instance_type="ml.m4.xlarge",
            data_capture_config=DataCaptureConfig(True, sampling_percentage=100),
        )  # fmt: skip
    (variant,) = platform.endpoints.get("monitored").config.variants
    assert variant.capture == CaptureConfig(100.0)
    with pytest.warns(UserWarning, match="initial_instance_count=3 is not used"):
        modelyard.deploy(
            "churn:1", "three", platform=platform, wait=False, initial_instance_count=3
        )
    with warnings.catch_warnings():  # the SDK's local mode is what a server is: nothing to say
        warnings.simplefilter("error")
        modelyard.deploy(
            "churn:1", "local", platform=platform, wait=False,
            initial_instance_count=1, instance_type="local",
        )  # fmt: skip
    assert {e.name for e in platform.endpoints.list_endpoints()} >= {"monitored", "three", "local"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"initial_instance_count": 0}, "initial_instance_count must be a whole number"),
        ({"initial_instance_count": True}, "initial_instance_count must be a whole number"),
        ({"initial_instance_count": "1"}, "initial_instance_count must be a whole number"),
        ({"instance_type": ""}, "instance_type must be a name"),
        ({"instance_type": 4}, "instance_type must be a name"),
    ],
)
def test_deploy_refuses_instance_fields_no_sdk_would_send(
    platform: Platform, fields: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidInput, match=named):
        modelyard.deploy("churn:1", "never", platform=platform, wait=False, **fields)  # type: ignore[arg-type]
    with pytest.raises(EndpointNotFound):
        platform.endpoints.get("never")


def test_deploy_names_the_sdks_positional_instance_count(platform: Platform) -> None:
    with pytest.raises(
        InvalidInput, match="initial_instance_count and instance_type go as keywords"
    ):
        modelyard.deploy("churn:1", 1, platform=platform, wait=False)  # type: ignore[arg-type]
    assert [e.name for e in platform.endpoints.list_endpoints()] == ["api"]


def test_update_endpoint_takes_the_sdks_model_name_and_instance_fields(platform: Platform) -> None:
    predictor = Predictor("api", platform=platform)
    before = platform.endpoints.get("api").config
    with pytest.warns(UserWarning, match="initial_instance_count=2 is not used"):
        predictor.update_endpoint(initial_instance_count=2, instance_type="local", wait=False)
    assert platform.endpoints.get("api").config == before, "scaling alone changes nothing"
    with pytest.raises(InvalidInput, match="model or model_name"):
        predictor.update_endpoint("churn:1", model_name="plain:1", wait=False)
    with pytest.raises(InvalidInput, match="initial_instance_count must be a whole number"):
        predictor.update_endpoint(model_name="plain:1", initial_instance_count=0, wait=False)
    assert platform.endpoints.get("api").config == before
    with pytest.warns(UserWarning, match="instance_type 'ml.m5.large' is not used"):
        predictor.update_endpoint(
            model_name="plain:1", initial_instance_count=1, instance_type="ml.m5.large",
            wait=False,
        )  # fmt: skip
    (variant,) = platform.endpoints.get("api").config.variants
    assert (variant.name, variant.model_ref) == ("AllTraffic", "plain:1")


def test_update_endpoint_keeps_the_endpoints_capture(platform: Platform) -> None:
    """As the SDK's update_endpoint keeps an endpoint's DataCaptureConfig: new models capture
    what the endpoint captured, redacting what it redacted where their model has the field."""
    predictor = Predictor("api", platform=platform)
    predictor.update_endpoint(model_name="churn:1", wait=False)
    assert captures(platform) == {"AllTraffic": (10.0, ["ssn:hash"])}
    predictor.update_endpoint(variants={"AllTraffic": "plain:1", "blue": "churn:1"}, wait=False)
    assert captures(platform) == {"AllTraffic": (10.0, []), "blue": (10.0, ["ssn:hash"])}


def test_update_endpoint_takes_the_apis_capture_dict(platform: Platform) -> None:
    predictor = Predictor("api", platform=platform)
    sdk = {  # what the SDK's DataCaptureConfig(True, 40)._to_request_dict() writes
        "EnableCapture": True,
        "InitialSamplingPercentage": 40,
        "DestinationS3Uri": "s3://bucket/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
    }
    with pytest.warns(UserWarning, match="destination_s3_uri is not used"):
        predictor.update_endpoint(model_name="plain:1", data_capture_config_dict=sdk, wait=False)
    assert captures(platform) == {"AllTraffic": (40.0, [])}
    models = platform.endpoints.get("api").config
    off = {"EnableCapture": False, "InitialSamplingPercentage": 40, "CaptureOptions": []}
    with pytest.raises(InvalidInput, match="capture_options"):
        predictor.update_endpoint(data_capture_config_dict=off, wait=False)
    off["CaptureOptions"] = sdk["CaptureOptions"]
    predictor.update_endpoint(data_capture_config_dict=off, initial_instance_count=1, wait=False)
    after = platform.endpoints.get("api").config
    assert captures(platform) == {"AllTraffic": (0.0, [])}
    assert after.change is ConfigChange.CAPTURE and after.variants[0].model_ref == "plain:1"
    assert models.number < after.number


@pytest.mark.parametrize(
    ("request_dict", "match"),
    [
        ("40", "must be a dict"),
        ({"InitialSamplingPercentage": 40}, "needs CaptureOptions"),
        ({"CaptureOptions": [{"CaptureMode": "Input"}]}, "needs InitialSamplingPercentage"),
        (
            {"InitialSamplingPercentage": 40.5, "CaptureOptions": []},
            "whole number from 0 to 100, got 40.5",
        ),
        ({"InitialSamplingPercentage": True, "CaptureOptions": []}, "whole number"),
        ({"InitialSamplingPercentage": 140, "CaptureOptions": []}, "from 0 to 100"),
        ({"InitialSamplingPercentage": 4, "CaptureOptions": ["Input"]}, "CaptureMode"),
        ({"InitialSamplingPercentage": 4, "CaptureOption": []}, "no field CaptureOption"),
        (
            {
                "InitialSamplingPercentage": 4,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"XmlContentTypes": ["a"]},
            },
            "CsvContentTypes and JsonContentTypes",
        ),
    ],
)
def test_a_capture_dict_the_api_would_refuse_changes_nothing(
    platform: Platform, request_dict: object, match: str
) -> None:
    before = platform.endpoints.get("api").config
    predictor = Predictor("api", platform=platform)
    with pytest.raises(InvalidInput, match=match):
        predictor.update_endpoint(
            model_name="plain:1",
            data_capture_config_dict=request_dict,  # type: ignore[arg-type]
            wait=False,
        )
    with pytest.raises(InvalidInput, match="not with weights alone"):
        predictor.update_endpoint(
            weights={"blue": 1},
            data_capture_config_dict={
                "InitialSamplingPercentage": 5,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            },
            wait=False,
        )
    assert platform.endpoints.get("api").config == before
