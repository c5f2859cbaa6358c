"""The V2 REST routes through the app bootstrap builds (httpx's ASGI transport): what a
hostile caller sends in the path and the tensors gets a 400/404 in the V2 shape, never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from modelyard.bootstrap import Platform, serving_app
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import make_platform

ROWS = [[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("v2rest") / "home")
    made.close()
    return made


def calls(platform: Platform, requests: list[tuple[str, str, Any]]) -> list[httpx.Response]:
    """``(method, path, json body or None)`` through the app, in order."""

    async def scenario() -> list[httpx.Response]:
        async with lifespan(serving_app(platform.settings)) as client:
            return [
                await client.request(method, path, json=body) for method, path, body in requests
            ]

    return asyncio.run(scenario())


def _register_classifier(platform: Platform, name: str) -> None:
    """Register the next version of ``name``: a classifier taking ``a, b, ssn``."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame([[0.0, 1.0, 2.0], [1.0, -1.0, 0.5], [2.0, 0.0, -1.0]] * 4)
    frame.columns = ["a", "b", "ssn"]
    model = LogisticRegression().fit(frame, [0, 1, 1] * 4)
    platform.registry.register(name, model, flavor="sklearn", input_example=frame[:3])


def tensor(datatype: str = "FP64", data: Any = ROWS, shape: Any = (2, 3)) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "datatype": datatype, "shape": shape, "data": data}]}


def test_a_version_of_thousands_of_digits_is_a_404_naming_it_shortened(
    platform: Platform,
) -> None:
    huge = "9" * 5000  # int() refuses past 4300 digits
    base = "/v2/models/quiet/versions"
    answers = calls(
        platform,
        [
            ("POST", f"{base}/{huge}/infer", tensor()),
            ("GET", f"{base}/{huge}/ready", None),
            ("GET", f"{base}/{huge}", None),
            ("POST", f"{base}/{'0' * 5000}1/infer", tensor()),  # leading zeros: version 1
        ],
    )
    for answer in answers[:3]:
        assert answer.status_code == 404, answer.text
        error = answer.json()["error"]
        assert error.startswith("endpoint 'quiet' has no variant or model version '9999")
        assert len(error) < 300, "the caller's string is not echoed whole"
    assert answers[3].status_code == 200, answers[3].text
    assert answers[3].json()["model_version"] == "1"


def test_an_escaped_slash_is_part_of_the_model_name(platform: Platform) -> None:
    """``%2F`` in a path segment is data, not a separator (RFC 3986): the model named
    ``quiet/ready`` is not the readiness of ``quiet``."""
    answers = calls(
        platform,
        [
            ("GET", "/v2/models/quiet%2Fready", None),
            ("GET", "/v2/models/quiet%2Fversions%2F1", None),
            ("POST", "/v2/models/quiet%2Fversions%2F1/infer", tensor()),
            ("GET", "/v2/models/quiet/versions/main%2Fready", None),
            ("GET", "/v2/models/qui%65t/versions/%31/ready?x=%2F", None),  # escaped letters
        ],
    )
    for answer, name in zip(answers, ("quiet/ready", "quiet/versions/1"), strict=False):
        assert answer.status_code == 404, answer.text
        assert answer.json() == {"error": f"endpoint {name!r} is not deployed"}
    assert answers[2].json() == {"error": "endpoint 'quiet/versions/1' is not deployed"}
    assert answers[3].status_code == 404, answers[3].text
    assert "no variant or model version 'main/ready'" in answers[3].json()["error"]
    assert (answers[4].status_code, answers[4].json()) == (200, {"name": "quiet", "ready": True})


def test_a_listed_version_number_answers_with_that_version_not_a_variant_named_like_it(
    tmp_path: Any,
) -> None:
    """A variant may be named ``1`` while another variant serves model version 1: the
    metadata lists ``1`` as a version a request may name, so ``/versions/1`` is version 1.
    A digit-named variant stays reachable by its name when no production variant serves
    that number."""
    made = make_platform(tmp_path / "home")
    _register_classifier(made, "churn")
    made.endpoints.create("digits", {"1": "churn:2", "blue": "churn:1"}, {"1": 0.5, "blue": 0.5})
    made.endpoints.create("named", {"7": "churn:2"})
    made.close()
    answers = calls(
        made,
        [
            ("GET", "/v2/models/digits", None),
            *[("POST", "/v2/models/digits/versions/1/infer", tensor())] * 4,
            ("POST", "/v2/models/digits/versions/2/infer", tensor()),
            ("POST", "/v2/models/named/versions/7/infer", tensor()),
        ],
    )
    assert answers[0].json()["versions"] == ["1", "2"]
    for answer in answers[1:5]:
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "1", "version 1 was asked for"
        assert answer.headers["x-modelyard-variant"] == "blue"
    assert answers[5].json()["model_version"] == "2"
    assert answers[6].status_code == 200, answers[6].text
    assert answers[6].headers["x-modelyard-variant"] == "7"


def test_a_version_number_two_models_serve_is_refused_naming_both(tmp_path: Any) -> None:
    """An A/B of two models at the same version number: ``/versions/1`` named either, and
    was answered by whichever came first. It is a 400 naming both; the variants answer by
    name."""
    made = make_platform(tmp_path / "home")
    _register_classifier(made, "fraud")
    made.endpoints.create("ab", {"x": "churn:1", "y": "fraud:1"}, {"x": 0.5, "y": 0.5})
    # A variant named like the number does not settle it either: a number is a version first.
    made.endpoints.create("ab1", {"1": "fraud:1", "x": "churn:1"}, {"1": 0.5, "x": 0.5})
    made.close()
    answers = calls(
        made,
        [
            ("POST", "/v2/models/ab/versions/1/infer", tensor()),
            ("GET", "/v2/models/ab/versions/1", None),
            ("POST", "/v2/models/ab/versions/y/infer", tensor()),
            ("POST", "/v2/models/ab1/versions/1/infer", tensor()),
        ],
    )
    assert answers[3].status_code == 400, answers[3].text
    for answer in answers[:2]:
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert "version 1 of endpoint 'ab' is ambiguous" in error
        assert "churn:1 (variant 'x'), fraud:1 (variant 'y')" in error
    assert answers[2].status_code == 200, answers[2].text
    assert answers[2].headers["x-modelyard-variant"] == "y"


LABELS = """
import numpy as np


class Model:
    def load(self, artifacts_dir):
        pass

    def predict(self, data):
        rows = np.asarray(data, dtype=float)
        # A file name decoded with surrogateescape, say: text no UTF-8 encoder takes.
        label = "caf\\udce9" if rows[0, 0] > 100 else "ok"
        return np.array([label] * len(rows), dtype=object)
"""


def test_text_predictions_no_utf8_encoder_takes_are_a_v2_500_naming_the_inference_id(
    tmp_path: Any,
) -> None:
    """A model answering text with a lone surrogate: encoding its labels as BYTES raised
    UnicodeEncodeError past the V2 adapter, so the caller got the server's bare
    ``Internal Server Error`` (text/plain, no ``{"error"}``, no inference id) and a traceback
    went to the log. It is the model's failure (500, V2 shape), and the server goes on."""
    import numpy as np

    from modelyard.bootstrap import build
    from modelyard.config import load_settings
    from modelyard.domain import Trust

    code = tmp_path / "labels"
    code.mkdir()
    (code / "model.py").write_text(LABELS)
    made = build(load_settings({}, home=tmp_path / "home"))
    made.registry.register(
        "labels",
        code,
        flavor="pyfunc",
        input_example=np.zeros((2, 3)),
        trust=Trust(user_code=True),
    )
    made.endpoints.create("labels-api", {"main": "labels:1"})
    made.close()
    path = "/v2/models/labels-api/infer"
    odd = tensor(data=[[500.0, 0.0, 0.0]], shape=[1, 3])
    binary = {**odd, "parameters": {"binary_data_output": True}}
    answers = calls(made, [("POST", path, odd), ("POST", path, binary), ("POST", path, tensor())])
    for answer in answers[:2]:
        assert answer.status_code == 500, answer.text
        assert answer.headers["content-type"] == "application/json"
        error = answer.json()["error"]
        assert "predictions hold text UTF-8 cannot encode" in error
        assert answer.headers["x-modelyard-inference-id"] in error
    assert answers[2].status_code == 200, answers[2].text
    assert answers[2].json()["outputs"][0]["data"] == ["ok", "ok"]
