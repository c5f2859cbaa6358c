"""HTTP methods on the serving app's known paths: HEAD answers as GET without the body (load
balancers and SageMaker health checks send it), and any other method a path does not answer is
a 405 with an ``Allow`` header, in the error shape of the path's protocol."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from modelyard.bootstrap import Platform, serving_app
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import make_platform

GET_PATHS = ["/ping", "/healthz", "/readyz", "/endpoints", "/metrics", "/v2/health/ready", "/v2"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("methods") / "home")
    made.close()
    return made


def requests(platform: Platform, calls: list[tuple[str, str]]) -> list[httpx.Response]:
    """``(method, path)`` calls through the app bootstrap builds, in order."""

    async def scenario() -> list[httpx.Response]:
        async with lifespan(serving_app(platform.settings)) as client:
            return [await client.request(method, path) for method, path in calls]

    return asyncio.run(scenario())


def test_head_answers_as_get_without_the_body(platform: Platform) -> None:
    answers = requests(platform, [(m, p) for p in GET_PATHS for m in ("GET", "HEAD")])
    for path, got, head in zip(GET_PATHS, answers[::2], answers[1::2], strict=True):
        assert got.status_code == 200 and got.content, (path, got.status_code, got.text)
        assert head.status_code == 200, (path, head.status_code, head.text)
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/ping"), ("PUT", "/healthz"), ("DELETE", "/readyz"), ("POST", "/endpoints")],
)
def test_a_wrong_method_on_a_server_route_is_405_with_allow(
    platform: Platform, method: str, path: str
) -> None:
    (answer,) = requests(platform, [(method, path)])
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == "GET, HEAD"
    error = answer.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["message"] == f"{method} {path} not allowed; use GET"


@pytest.mark.parametrize("route", ["invocations", "feedback"])
@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
def test_a_wrong_method_on_an_endpoint_route_is_405_in_the_sagemaker_shape(
    platform: Platform, route: str, method: str
) -> None:
    (answer,) = requests(platform, [(method, f"/endpoints/api/{route}")])
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == "POST"
    if method == "HEAD":
        assert answer.content == b""
        return
    body = answer.json()
    assert body["error_code"] == "method_not_allowed"
    assert body["message"] == f"{method} not allowed; use POST"
    if route == "invocations":  # what boto3's invoke_endpoint reads the error's kind from
        assert answer.headers["x-amzn-errortype"] == "ValidationError"


@pytest.mark.parametrize(
    ("method", "path", "use", "allowed"),
    [
        ("POST", "/v2/health/live", "GET", "GET, HEAD"),
        ("DELETE", "/v2/models/api", "GET", "GET, HEAD"),
        ("GET", "/v2/models/api/infer", "POST", "POST"),
    ],
)
def test_a_wrong_method_on_a_v2_route_is_405_in_the_v2_shape(
    platform: Platform, method: str, path: str, use: str, allowed: str
) -> None:
    (answer,) = requests(platform, [(method, path)])
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == allowed
    assert answer.json() == {"error": f"{method} {path} is not allowed; use {use}"}


def test_an_unknown_path_is_still_404(platform: Platform) -> None:
    (answer,) = requests(platform, [("POST", "/nowhere")])
    assert answer.status_code == 404
    assert "allow" not in answer.headers
    assert answer.json()["error"]["code"] == "not_found"


def test_a_defect_on_an_invocation_route_is_an_internal_error_in_its_protocols_shape(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception no typed error maps (a defect of the server's own, injected here in the
    request decoders) is answered in the route's error shape, naming the inference id, its
    traceback logged; it was the ASGI server's bare text 500, with no inference id."""
    import modelyard.serving.sagemaker as sagemaker_route
    import modelyard.serving.v2.rest as v2_route

    def defect(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a defect")

    monkeypatch.setattr(sagemaker_route.payloads, "decode", defect)
    monkeypatch.setattr(v2_route, "rows_from_tensors", defect)
    v2 = {"inputs": [{"name": "a", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]}

    async def scenario() -> list[httpx.Response]:
        async with lifespan(serving_app(platform.settings)) as client:
            return [
                await client.post("/endpoints/quiet/invocations", content=b"[[1, 2, 3]]",
                                  headers={"content-type": "application/json"}),
                await client.post("/v2/models/quiet/infer", json=v2),
                await client.post("/endpoints/quiet/invocations", content=b"[[1, 2, 3]]",
                                  headers={"content-type": "text/csv"}),
            ]  # fmt: skip

    sagemaker, v2_answer, csv = asyncio.run(scenario())
    assert csv.status_code == 500 and csv.json()["error_code"] == "internal", csv.text
    assert sagemaker.status_code == 500, sagemaker.text
    assert sagemaker.headers["x-amzn-errortype"] == "InternalFailure"
    body = sagemaker.json()
    assert body["error_code"] == "internal"
    assert body["message"] == f"internal error; inference id {body['inference_id']}"
    assert body["inference_id"] == sagemaker.headers["x-modelyard-inference-id"]
    assert v2_answer.status_code == 500, v2_answer.text
    v2_id = v2_answer.headers["x-modelyard-inference-id"]
    assert v2_answer.json() == {"error": f"internal error; inference id {v2_id}"}
    logged = [r for r in caplog.records if r.exc_info and "RuntimeError" in str(r.exc_info[0])]
    assert {body["inference_id"], v2_id} <= {str(r.args[0]) for r in logged}
