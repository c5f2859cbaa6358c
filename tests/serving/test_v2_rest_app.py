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
