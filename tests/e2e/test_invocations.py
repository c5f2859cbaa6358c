"""The invocation API through a real `modelyard serve` on 127.0.0.1: payload shapes, headers,
SageMaker's boto3 client, routing, and every bad-input class."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain import Trust
from tests.e2e.conftest import N_FEATURES, expected, raw_request

INVOKE = "/endpoints/churn-api/invocations"


@pytest.fixture
def one_variant(platform: Platform, serve: Any) -> Any:
    platform.endpoints.create("churn-api", {"main": "churn:2"})
    return serve()


def test_json_shapes_csv_and_headers(one_variant: Any, models: dict[str, Any]) -> None:
    rows = models["x"][:3]
    want = expected(models, 2, rows)
    names = models["names"]
    bodies = [
        ("application/json", orjson.dumps({"instances": rows.tolist()})),
        ("application/json", orjson.dumps(rows.tolist())),
        (
            "application/json",
            orjson.dumps([dict(zip(names, r, strict=True)) for r in rows.tolist()]),
        ),
        (
            "application/json",
            orjson.dumps({"inputs": {n: rows[:, i].tolist() for i, n in enumerate(names)}}),
        ),
        ("text/csv", "\n".join(",".join(repr(v) for v in r.tolist()) for r in rows).encode()),
    ]
    ids = set()
    with one_variant.client() as http:
        for content_type, body in bodies:
            res = http.post(INVOKE, content=body, headers={"content-type": content_type})
            assert res.status_code == 200, res.text
            np.testing.assert_allclose(res.json()["predictions"], want, rtol=1e-6, atol=1e-6)
            assert res.headers["x-modelyard-variant"] == "main"
            assert res.headers["x-amzn-invoked-production-variant"] == "main"
            assert res.headers["x-modelyard-model-version"] == "churn:2"
            ids.add(res.headers["x-modelyard-inference-id"])
        single = http.post(INVOKE, json=rows[0].tolist())
        np.testing.assert_allclose(single.json()["predictions"], want[:1], rtol=1e-6, atol=1e-6)
        as_csv = http.post(INVOKE, json=rows.tolist(), headers={"accept": "text/csv"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        got = [float(x) for x in as_csv.text.split()]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert len(ids) == len(bodies), "every response has its own inference id"


def test_boto3_sagemaker_runtime_client(
    one_variant: Any, models: dict[str, Any], boto3_client: Callable[[str], Any]
) -> None:
    client = boto3_client(one_variant.url)
    rows = models["x"][:2]
    body = "\n".join(",".join(str(v) for v in r) for r in rows)
    answer = client.invoke_endpoint(EndpointName="churn-api", ContentType="text/csv", Body=body)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["InvokedProductionVariant"] == "main"
    assert answer["ContentType"] == "application/json"
    got = orjson.loads(answer["Body"].read())["predictions"]
    np.testing.assert_allclose(got, expected(models, 2, rows), rtol=1e-6, atol=1e-6)
    targeted = client.invoke_endpoint(
        EndpointName="churn-api",
        ContentType="application/json",
        Accept="text/csv",
        TargetVariant="main",
        Body=orjson.dumps(rows.tolist()),
    )
    assert targeted["InvokedProductionVariant"] == "main"
    assert len(targeted["Body"].read().decode().split()) == 2


# botocore leaves the connection of an error answer to an operation with a streaming output
# (InvokeEndpoint's Body) unreleased, and the garbage collector finds its socket open: collected
# here, where it is made, rather than in whichever test runs next.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket:pytest.PytestUnraisableExceptionWarning"
)
def test_boto3_fields_the_runtime_refuses_are_refused(
    one_variant: Any, models: dict[str, Any], boto3_client: Callable[[str], Any]
) -> None:
    from botocore.exceptions import ClientError

    client = boto3_client(one_variant.url)
    body = orjson.dumps(models["x"][:1].tolist())
    cases = [
        ({"CustomAttributes": "x" * 1025}, "CustomAttributes must be at most 1024 visible ASCII"),
        ({"InferenceId": "i" * 65}, "InferenceId must be 1 to 64 printable ASCII characters"),
        ({"TargetVariant": " "}, "TargetVariant is blank"),
        # Fields that pick a model of another kind of endpoint: refused, as the runtime does,
        # never answered by the endpoint's usual variant (another model than asked for).
        ({"TargetModel": "churn-v3.tar.gz"}, "'churn-api' is not a multi-model endpoint"),
        ({"TargetContainerHostname": "c1"}, "does not take TargetContainerHostname"),
        ({"InferenceComponentName": "ic-1"}, "is not inference components"),
    ]
    for fields, message in cases:
        with pytest.raises(ClientError) as refused:
            client.invoke_endpoint(
                EndpointName="churn-api", ContentType="application/json", Body=body, **fields
            )
        error = refused.value.response["Error"]
        assert (error["Code"], message in error["Message"]) == ("ValidationError", True), error
    at_limits = {"CustomAttributes": "a=b;" * 256, "InferenceId": "i" * 64}
    answer = client.invoke_endpoint(
        EndpointName="churn-api", ContentType="application/json", Body=body, **at_limits
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    # What botocore cannot send (a header it would have to encode), sent raw.
    raw = httpx.post(
        f"{one_variant.url}/endpoints/churn-api/invocations",
        content=body,
        headers=[(b"content-type", b"application/json"),
                 (b"x-amzn-sagemaker-custom-attributes", "café".encode())],
        timeout=10,
    )  # fmt: skip
    assert raw.status_code == 400 and "with U+00C3 at 4" in raw.text
    assert raw.headers["x-amzn-errortype"].startswith("ValidationError")
    del refused
    gc.collect()


def test_two_different_content_types_are_refused_naming_the_header(
    one_variant: Any, models: dict[str, Any], boto3_client: Callable[[str], Any]
) -> None:
    """A request with two Content-Type headers that disagree (or, on V2, two
    Inference-Header-Content-Length headers) is ambiguous: refused, not read by the last one.
    The same value twice is one value; boto3's single header is unaffected."""
    row = models["x"][0]
    csv, json_ = ",".join(repr(v) for v in row.tolist()).encode(), orjson.dumps([row.tolist()])
    with one_variant.client() as http:
        for body, first, last in (
            (csv, b"application/json", b"text/csv"),
            (json_, b"text/csv", b"application/json"),
        ):
            headers = [(b"content-type", first), (b"content-type", last)]
            res = http.post(INVOKE, content=body, headers=headers)
            assert res.status_code == 400, res.text
            assert res.headers["x-amzn-errortype"] == "ValidationError"
            message = res.json()["message"]
            assert "Content-Type" in message and first.decode() in message, message
            assert last.decode() in message, message
        twice = [(b"content-type", b"text/csv"), (b"content-type", b"text/csv")]
        assert http.post(INVOKE, content=csv, headers=twice).status_code == 200
        # Any single-valued field: the variant the caller meant is unknowable too.
        target = b"x-amzn-sagemaker-target-variant"
        variants = [(b"content-type", b"text/csv"), (target, b"blue"), (target, b"main")]
        res = http.post(INVOKE, content=csv, headers=variants)
        assert res.status_code == 400, res.text
        message = res.json()["message"]
        assert "Target-Variant" in message and "blue" in message and "main" in message, message
        v2 = b'{"inputs": [{"name": "input-0", "shape": [1, 30], "datatype": "FP64", "data": %s}]}'
        v2_body = v2 % orjson.dumps(row.tolist())
        framing = [
            (b"inference-header-content-length", str(len(v2_body)).encode()),
            (b"inference-header-content-length", b"3"),
        ]
        res = http.post("/v2/models/churn-api/infer", content=v2_body, headers=framing)
        assert res.status_code == 400, res.text
        assert "Inference-Header-Content-Length" in res.json()["error"], res.text
    answer = boto3_client(one_variant.url).invoke_endpoint(
        EndpointName="churn-api", ContentType="text/csv", Body=csv
    )
    np.testing.assert_allclose(
        orjson.loads(answer["Body"].read())["predictions"],
        expected(models, 2, models["x"][:1]),
        rtol=1e-6,
        atol=1e-6,
    )


def test_accept_sent_twice_is_one_list_of_both(one_variant: Any, models: dict[str, Any]) -> None:
    """Accept is a list (RFC 9110 5.3, 12.5.1): two field lines mean their values joined with a
    comma, in order, so the first line's type wins a tie, as it would in one line; the last
    line alone was read before. The same holds for X-Amzn-SageMaker-Accept on the stream."""
    rows = models["x"][:2]
    body = orjson.dumps(rows.tolist())
    want = expected(models, 2, rows)
    with one_variant.client() as http:
        for lines in (
            [b"text/csv", b"application/json"],
            [b"text/csv", b"application/json;q=0.5"],
            [b"image/png", b"text/csv"],
            [b"", b"text/csv"],
        ):
            headers = [(b"content-type", b"application/json")]
            headers += [(b"accept", line) for line in lines]
            res = http.post(INVOKE, content=body, headers=headers)
            assert res.status_code == 200, (lines, res.text)
            assert res.headers["content-type"].startswith("text/csv"), (lines, res.text)
            got = [float(x) for x in res.text.split()]
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        headers = [(b"content-type", b"application/json")]
        headers += [(b"x-amzn-sagemaker-accept", b"text/csv")] * 2
        headers += [(b"x-amzn-sagemaker-accept", b"application/json")]
        res = http.post(f"{INVOKE}-response-stream", content=body, headers=headers)
        assert res.status_code == 200, res.text
        assert res.headers["x-amzn-sagemaker-content-type"] == "text/csv"
        refused = [(b"accept", b"image/png"), (b"accept", b"text/html")]
        res = http.post(INVOKE, content=body, headers=refused)
        assert res.status_code == 406, res.text
        assert res.headers["x-amzn-errortype"] == "ValidationError"
        message = res.json()["message"]
        assert "image/png" in message and "text/html" in message, message


def test_boto3_response_stream_and_async(
    one_variant: Any, models: dict[str, Any], boto3_client: Callable[[str], Any]
) -> None:
    """invoke_endpoint_with_response_stream answers in PayloadPart events (its Accept goes in
    X-Amzn-SageMaker-Accept, its ContentType comes back in X-Amzn-SageMaker-Content-Type);
    invoke_endpoint_async is a ValidationError that says what to use, not a bare 404."""
    from botocore.exceptions import ClientError

    client = boto3_client(one_variant.url)
    rows = models["x"][:3]
    want = expected(models, 2, rows)
    answer = client.invoke_endpoint_with_response_stream(
        EndpointName="churn-api",
        ContentType="application/json",
        Accept="text/csv",
        Body=orjson.dumps(rows.tolist()),
    )
    assert answer["ContentType"] == "text/csv"
    assert answer["InvokedProductionVariant"] == "main"
    events = answer["Body"]
    try:
        body = b"".join(event["PayloadPart"]["Bytes"] for event in events)
    finally:
        events.close()  # its connection, or the garbage collector finds the socket open
    got = [float(x) for x in body.decode().split()]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ClientError) as missing:
        client.invoke_endpoint_with_response_stream(
            EndpointName="nope", ContentType="text/csv", Body="1"
        )
    assert missing.value.response["Error"]["Code"] == "ValidationError"
    assert "'nope'" in missing.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as refused:
        client.invoke_endpoint_async(EndpointName="churn-api", InputLocation="s3://b/in.csv")
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationError", refused.value.response
    assert "invoke_endpoint" in error["Message"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The server goes on serving.
    ok = client.invoke_endpoint(
        EndpointName="churn-api",
        ContentType="application/json",
        Body=orjson.dumps(rows[:1].tolist()),
    )
    np.testing.assert_allclose(
        orjson.loads(ok["Body"].read())["predictions"], want[:1], rtol=1e-6, atol=1e-6
    )


def test_routing_split_and_sticky_keys(platform: Platform, serve: Any) -> None:
    platform.endpoints.create(
        "churn-api", {"blue": "churn:1", "green": "churn:2"}, {"blue": 0.8, "green": 0.2}
    )
    server = serve()
    row = [0.0] * N_FEATURES
    with server.client() as http:
        counts = Counter(
            http.post(INVOKE, json=row).headers["x-modelyard-variant"] for _ in range(600)
        )
        # binomial(600, 0.2): mean 120, sd ~9.8; 5 sd either side
        assert 71 < counts["green"] < 169, counts
        sticky = {
            key: {
                http.post(INVOKE, json=row, headers={"x-modelyard-routing-key": key}).headers[
                    "x-modelyard-variant"
                ]
                for _ in range(5)
            }
            for key in (f"user-{i}" for i in range(30))
        }
        assert all(len(seen) == 1 for seen in sticky.values()), sticky
        forced = http.post(INVOKE, json=row, headers={"X-Amzn-SageMaker-Target-Variant": "green"})
        assert forced.headers["x-modelyard-model-version"] == "churn:2"


@pytest.fixture
def failing_model(platform: Platform, tmp_path: Path) -> None:
    code = tmp_path / "boom"
    code.mkdir()
    (code / "model.py").write_text(
        "import numpy as np\n\n"
        "class Model:\n"
        "    def load(self, artifacts_dir):\n"
        "        pass\n\n"
        "    def predict(self, data):\n"
        "        data = np.asarray(data, dtype=float)\n"
        "        if (data[:, 0] == 999).any():\n"
        "            raise RuntimeError('secret internals: do not leak')\n"
        "        return data.sum(axis=1)\n"
    )
    platform.registry.register(
        "boom", code, flavor="pyfunc", input_example=np.zeros((2, 3)), trust=Trust(user_code=True)
    )
    platform.endpoints.create("boom-api", {"main": "boom:1"})


def test_every_bad_input_class(failing_model: None, one_variant: Any) -> None:
    server = one_variant
    row = [0.5] * N_FEATURES
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"content": b'{"instances": [[1, 2', "headers": {"content-type": "application/json"}},
            400,
            "malformed JSON",
        ),
        ({"content": b"1,2,3\n4,x,6", "headers": {"content-type": "text/csv"}}, 400, "line 2"),
        ({"json": [1.0, 2.0]}, 400, "expected 30 features"),
        ({"json": [{"f0": 1.0}]}, 400, "missing"),
        ({"json": [["a"] * N_FEATURES]}, 400, "row 1"),
        ({"content": b"[]", "headers": {"content-type": "application/json"}}, 400, "no rows"),
        ({"content": b"x", "headers": {"content-type": "image/png"}}, 415, "image/png"),
        ({"json": row, "headers": {"accept": "image/png"}}, 406, "image/png"),
        ({"json": row, "headers": {"x-amzn-sagemaker-target-variant": "nope"}}, 404, "nope"),
    ]
    with server.client() as http:
        for request, status, words in cases:
            res = http.post(INVOKE, **request)
            assert res.status_code == status, (request, res.text)
            error = res.json()
            assert words in error["message"], (words, error)
            assert error["inference_id"] == res.headers["x-modelyard-inference-id"]
            assert res.headers["x-amzn-errortype"] == "ValidationError", res.headers
        assert http.post("/endpoints/nope/invocations", json=row).status_code == 404
        assert http.get(INVOKE).status_code == 405
        # NaN and null are missing values, answered like any other row.
        nan_row = http.post(
            INVOKE,
            content=b"[" + b",".join([b"null"] * N_FEATURES) + b"]",
            headers={"content-type": "application/json"},
        )
        assert nan_row.status_code == 200 and len(nan_row.json()["predictions"]) == 1
        boom = http.post("/endpoints/boom-api/invocations", json=[999, 1, 2])
        assert boom.status_code == 424 and boom.headers["x-amzn-errortype"] == "ModelError"
        assert boom.json()["inference_id"] in boom.json()["message"]
        assert boom.json()["OriginalStatusCode"] == 500
        assert "secret internals" not in boom.text
        assert http.post("/endpoints/boom-api/invocations", json=[1, 1, 2]).json() == {
            "predictions": [4.0]
        }, "the server goes on serving after a model raised"
    port = int(server.url.rsplit(":", 1)[1])
    answer = raw_request(
        port,
        (
            f"POST {INVOKE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {7 * 1024 * 1024}\r\n\r\n"
        ).encode(),
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_streamed_body_over_the_limit(platform: Platform, serve: Any) -> None:
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    server = serve(MODELYARD_MAX_PAYLOAD_BYTES="10000")

    def chunks() -> Any:
        for _ in range(100):  # 100 x 1 KB, sent chunked (no Content-Length)
            yield b"0" * 1024

    with server.client() as http:
        res = http.post(INVOKE, content=chunks(), headers={"content-type": "text/csv"})
        assert res.status_code == 413 and "10000" in res.json()["message"]
        assert http.post(INVOKE, json=[0.0] * N_FEATURES).status_code == 200
