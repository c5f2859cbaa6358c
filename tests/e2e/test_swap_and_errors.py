"""The swap race on the request path, and SageMaker-shaped errors read by boto3.

A request holds the variant it chose from the moment it is chosen (when its headers arrive)
until its response: an endpoint update that lands while the body is still on its way must not
unload the model under it. And boto3's ``invoke_endpoint`` must read each error's SageMaker
name and message, as it does from the real runtime.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain import Trust
from tests.e2e.conftest import MODELYARD, N_FEATURES, Server, clean_env, free_port

DEADLINE_S = 60.0


def wait_until(condition: Callable[[], Any], what: str, server: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert server.process.poll() is None, server.log.read_text()[-3000:]
        time.sleep(0.05)
    raise AssertionError(f"not {what} within {DEADLINE_S}s; log:\n{server.log.read_text()[-3000:]}")


def onnx_versions(platform: Platform, models: dict[str, Any]) -> np.ndarray:
    """Register two ONNX logistic regressions as ``scorer:1`` and ``scorer:2``."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = models["x"].astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    for c in (0.01, 10.0):
        fitted = LogisticRegression(C=c, max_iter=2000).fit(x, y)
        platform.registry.register(
            "scorer", to_onnx(fitted, x[:1]), flavor="onnx", input_example=x[:3]
        )
    return x


def read_response(sock: socket.socket) -> bytes:
    """Read one HTTP/1.1 response with a Content-Length until its body has arrived."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_update_between_a_requests_headers_and_its_body_does_not_break_it(
    platform: Platform, serve: Any, models: dict[str, Any]
) -> None:
    x = onnx_versions(platform, models)
    platform.endpoints.create("scoring", {"main": "scorer:1"})
    server = serve()
    body = orjson.dumps(x[:2].tolist())
    port = int(server.url.rsplit(":", 1)[1])

    def described() -> dict[str, Any]:
        with server.client() as http:
            return dict(http.get("/endpoints").json())

    def variant() -> dict[str, Any]:
        return dict(described()["endpoints"][0]["variants"][0])

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /endpoints/scoring/invocations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        # The request has chosen scorer:1 and counts as in flight, its body not yet sent.
        wait_until(lambda: variant()["inflight"] == 1, "the request in flight", server)
        platform.endpoints.update("scoring", {"main": "scorer:2"})
        wait_until(lambda: variant()["model"] == "scorer:2", "the swap", server)
        assert described()["retired"] == [{"model": "scorer:1", "inflight": 1}]
        sock.sendall(body)
        answer = read_response(sock)
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:600]
    assert b"x-modelyard-model-version: scorer:1" in head, head
    assert len(orjson.loads(payload)["predictions"]) == 2
    # Once its last request has finished, the replaced model is unloaded.
    wait_until(lambda: described()["retired"] == [], "the old model unloaded", server)
    with server.client() as http:
        after = http.post(
            "/endpoints/scoring/invocations",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert after.status_code == 200 and after.headers["x-modelyard-model-version"] == "scorer:2"


def boom_model(platform: Platform, tmp_path: Path) -> None:
    code = tmp_path / "boom"
    code.mkdir()
    (code / "model.py").write_text(
        "import numpy as np\n\n"
        "class Model:\n"
        "    def load(self, artifacts_dir):\n"
        "        pass\n\n"
        "    def predict(self, data):\n"
        "        data = np.asarray(data, dtype=float)\n"
        "        if (data > 100).any():\n"
        "            raise RuntimeError('secret internals')\n"
        "        return data.sum(axis=1)\n"
    )
    platform.registry.register(
        "boom", code, flavor="pyfunc", input_example=[[1.0, 2.0]], trust=Trust(user_code=True)
    )


def test_boto3_reads_every_error_class(
    platform: Platform, tmp_path: Path, boto3_client: Callable[[str], Any]
) -> None:
    boom_model(platform, tmp_path)
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    platform.endpoints.create("boom-api", {"main": "boom:1"})
    platform.endpoints.create("broken-api", {"main": "churn:2"})
    # churn:2's package goes missing before the server starts: it can never load it.
    digest = platform.registry.get_version("churn:2").artifact_digest
    blobs = [p for p in platform.settings.home.rglob(f"*{digest}*") if p.is_file()]
    assert blobs, "the test must find the package it breaks"
    for blob in blobs:
        shutil.move(blob, tmp_path / blob.name)
    # A server that cannot load every model never answers /ping with 200: wait for liveness.
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [MODELYARD, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=clean_env(platform.settings.home),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _check_errors(server, boto3_client(server.url))
    finally:
        server.stop()


def _check_errors(server: Server, client: Any) -> None:
    from botocore.exceptions import ClientError

    def live() -> bool:
        with server.client() as http:
            try:
                return http.get("/healthz").status_code == 200
            except Exception:
                return False

    wait_until(live, "live", server)

    def error_of(**request: Any) -> dict[str, Any]:
        with pytest.raises(ClientError) as caught:
            client.invoke_endpoint(**request)
        response: dict[str, Any] = caught.value.response
        return response

    row = ",".join(["0.5"] * N_FEATURES)
    cases = [
        (
            {"EndpointName": "churn-api", "ContentType": "text/csv", "Body": "1,2,oops"},
            "ValidationError",
            400,
            "oops",
        ),
        (
            {"EndpointName": "churn-api", "ContentType": "image/png", "Body": b"x"},
            "ValidationError",
            415,
            "image/png",
        ),
        (
            {"EndpointName": "nope", "ContentType": "text/csv", "Body": row},
            "ValidationError",
            404,
            "'nope'",
        ),
        (
            {
                "EndpointName": "churn-api",
                "ContentType": "text/csv",
                "Body": row,
                "TargetVariant": "green",
            },
            "ValidationError",
            404,
            "'green'",
        ),
        (
            {"EndpointName": "boom-api", "ContentType": "text/csv", "Body": "999,1"},
            "ModelError",
            424,
            "RuntimeError",
        ),
        (
            {"EndpointName": "broken-api", "ContentType": "text/csv", "Body": row},
            "ModelNotReadyException",
            429,  # botocore's sagemaker-runtime model: ModelNotReadyException is 429
            "churn:2",
        ),
    ]
    for request, code, status, words in cases:
        response = error_of(**request)
        error = response["Error"]
        assert error["Code"] == code, (request, response)
        assert words in error["Message"], (request, response)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-modelyard-inference-id"], headers
    model_error = error_of(EndpointName="boom-api", ContentType="text/csv", Body="999,1")
    assert model_error["OriginalStatusCode"] == 500, model_error
    inference_id = model_error["ResponseMetadata"]["HTTPHeaders"]["x-modelyard-inference-id"]
    assert inference_id in model_error["OriginalMessage"], model_error
    assert "secret internals" not in model_error["Error"]["Message"]
    # The server goes on serving every endpoint it could load.
    ok = client.invoke_endpoint(EndpointName="churn-api", ContentType="text/csv", Body=row)
    assert ok["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(orjson.loads(ok["Body"].read())["predictions"]) == 1
