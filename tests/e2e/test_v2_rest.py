"""The Open Inference Protocol V2 REST routes through a real `modelyard serve` on 127.0.0.1,
with raw JSON (and raw binary) requests: health, metadata, inference in every data layout,
versions, and every error class, the server serving on after each."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from modelyard.bootstrap import build
from modelyard.config import load_settings
from modelyard.domain import Trust
from tests.e2e.conftest import (
    MODELYARD,
    N_FEATURES,
    Server,
    clean_env,
    expected,
    free_port,
    raw_request,
)
from tests.waiting import wait_for

CHURN = "/v2/models/churn-api"
GOOD = ["great", "wonderful", "loved", "brilliant", "moving", "superb"]
BAD = ["awful", "boring", "hated", "terrible", "dull", "waste"]
BOOM = """
import numpy as np


class Model:
    def load(self, artifacts_dir):
        pass

    def predict(self, data):
        data = np.asarray(data, dtype=float)
        if (data[:, 0] == 999).any():
            raise RuntimeError("secret internals: do not leak")
        return data.sum(axis=1)
"""
BROKEN = """
import os


class Model:
    def load(self, artifacts_dir):
        if os.environ.get("V2_TEST_BROKEN_LOAD"):
            raise RuntimeError("this model cannot load in the server")

    def predict(self, data):
        return data[:, 0]
"""


def sentiment_pipeline() -> tuple[Any, Any]:
    """A scikit-learn text classifier taking a DataFrame with a "review" column."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(0)
    texts, labels = [], []
    for _ in range(200):
        positive = bool(rng.integers(2))
        texts.append("the film was " + " and ".join(rng.choice(GOOD if positive else BAD, 3)))
        labels.append(int(positive))
    frame = pd.DataFrame({"review": texts})
    features = ColumnTransformer([("text", TfidfVectorizer(), "review")])
    pipeline = Pipeline([("features", features), ("model", LogisticRegression())])
    return pipeline.fit(frame, labels), frame


def register_text_model(platform: Any, name: str) -> Any:
    import skops.io as sio

    pipeline, frame = sentiment_pipeline()
    types = tuple(sio.get_untrusted_types(data=sio.dumps(pipeline)))
    platform.registry.register(
        name, pipeline, flavor="sklearn", input_example=frame.head(5), trust=Trust(types=types)
    )
    return pipeline


def pyfunc(platform: Any, folder: Path, name: str, code: str, width: int) -> None:
    folder.mkdir()
    (folder / "model.py").write_text(code)
    platform.registry.register(
        name,
        folder,
        flavor="pyfunc",
        input_example=np.zeros((2, width)),
        trust=Trust(user_code=True),
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Any]) -> Iterator[Any]:
    """One server for the module: churn-api (blue: churn:1 30%, green: churn:2 70%), reviews
    (a text classifier), boom-api (raises on 999) and broken-api (cannot load in the server)."""
    import pandas as pd

    root = tmp_path_factory.mktemp("v2rest")
    home = root / "home"
    platform = build(load_settings({}, home=home))
    try:
        example = pd.DataFrame(models["x"][:5], columns=models["names"])
        for booster in models["boosters"][:2]:
            platform.registry.register("churn", booster, flavor="xgboost", input_example=example)
        platform.endpoints.create(
            "churn-api", {"blue": "churn:1", "green": "churn:2"}, {"blue": 0.3, "green": 0.7}
        )
        pipeline = register_text_model(platform, "sentiment")
        platform.endpoints.create("reviews", {"main": "sentiment:1"})
        pyfunc(platform, root / "boom", "boom", BOOM, 3)
        platform.endpoints.create("boom-api", {"main": "boom:1"})
        pyfunc(platform, root / "broken", "broken", BROKEN, 2)
        platform.endpoints.create("broken-api", {"main": "broken:1"})
    finally:
        platform.close()
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [MODELYARD, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=clean_env(home, V2_TEST_BROKEN_LOAD="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_for("three endpoints served and broken-api failed", lambda: _state(server))
        yield server, pipeline
    finally:
        server.stop()


def _state(server: Server) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"server exited: {server.log.read_text()[-3000:]}")
    try:
        answer = httpx.get(f"{server.url}/endpoints", timeout=2).json()
    except httpx.TransportError:
        return False
    names = {e["name"] for e in answer["endpoints"]}
    return names == {"churn-api", "reviews", "boom-api"} and "broken-api" in answer["failures"]


@pytest.fixture
def http(served: Any) -> Iterator[httpx.Client]:
    with served[0].client() as client:
        yield client


def infer(
    http: httpx.Client, path: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return http.post(
        path, content=content, headers={"content-type": "application/json", **(headers or {})}
    )


def tensor(rows: np.ndarray, flat: bool = False, name: str = "input-0") -> dict[str, Any]:
    data = rows.reshape(-1).tolist() if flat else rows.tolist()
    return {"name": name, "datatype": "FP64", "shape": list(rows.shape), "data": data}


def test_health_and_server_metadata(http: httpx.Client) -> None:
    live = http.get("/v2/health/live")
    assert (live.status_code, live.json()) == (200, {"live": True})
    # broken-api cannot load, so the server is not ready: a 4xx, as the protocol says
    ready = http.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (400, {"ready": False})
    server = http.get("/v2")
    assert server.status_code == 200
    assert server.json() == {
        "name": "modelyard",
        "version": metadata.version("modelyard"),
        "extensions": ["binary_tensor_data"],
    }
    assert http.post("/v2/health/live").status_code == 405
    # A trailing slash, as the model routes and /v2/ take it (the health routes were a 404).
    assert http.get("/v2/health/live/").json() == {"live": True}
    assert http.get("/v2/health/ready/").json() == {"ready": False}
    missing = http.get("/v2/nothing/here")
    assert missing.status_code == 404 and "no route" in missing.json()["error"]


def test_model_metadata_and_readiness(http: httpx.Client) -> None:
    described = http.get(CHURN)
    assert described.status_code == 200, described.text
    assert described.json() == {
        "name": "churn-api",
        "versions": ["1", "2"],
        "platform": "xgboost",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, N_FEATURES]}],
        "outputs": [{"name": "output-0", "datatype": "FP32", "shape": [-1]}],
    }
    assert http.get(f"{CHURN}/versions/1").json() == described.json()
    assert http.get(f"{CHURN}/versions/blue").json() == described.json()
    text = http.get("/v2/models/reviews").json()
    assert text["platform"] == "sklearn"
    assert text["inputs"] == [{"name": "review", "datatype": "BYTES", "shape": [-1]}]
    assert text["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]
    for path in (f"{CHURN}/ready", f"{CHURN}/versions/2/ready", f"{CHURN}/versions/blue/ready"):
        ready = http.get(path)
        assert (ready.status_code, ready.json()) == (200, {"name": "churn-api", "ready": True})
    broken = http.get("/v2/models/broken-api/ready")
    assert (broken.status_code, broken.json()) == (400, {"name": "broken-api", "ready": False})
    for path, status, words in [
        (f"{CHURN}/versions/9/ready", 404, "no variant or model version '9'"),
        ("/v2/models/nope/ready", 404, "endpoint 'nope' is not deployed"),
        ("/v2/models/nope", 404, "endpoint 'nope' is not deployed"),
        ("/v2/models/broken-api", 503, "cannot load in the server"),
    ]:
        answer = http.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert words in answer.json()["error"]


def test_infer_nested_flat_columnar_and_versions(
    http: httpx.Client, models: dict[str, Any]
) -> None:
    rows = models["x"][:4]
    want = {v: expected(models, v, rows) for v in (1, 2)}
    columns = [
        {"name": name, "datatype": "FP64", "shape": [4], "data": rows[:, i].tolist()}
        for i, name in reversed(list(enumerate(models["names"])))
    ]
    bodies = [
        {"id": "nested", "inputs": [tensor(rows)]},
        {"id": "flat", "inputs": [tensor(rows, flat=True, name="x")], "parameters": {"p": 1}},
        {"id": "columns", "inputs": columns, "outputs": [{"name": "output-0"}]},
    ]
    ids = set()
    for version, variant in (("2", "green"), ("blue", "blue")):
        number = 2 if variant == "green" else 1
        for body in bodies:
            res = infer(http, f"{CHURN}/versions/{version}/infer", body)
            assert res.status_code == 200, res.text
            assert res.headers["content-type"] == "application/json"
            answer = res.json()
            assert answer["model_name"] == "churn-api"
            assert answer["model_version"] == str(number)
            assert answer["id"] == body["id"]
            (output,) = answer["outputs"]
            assert (output["name"], output["datatype"], output["shape"]) == (
                "output-0",
                "FP32",
                [4],
            )
            np.testing.assert_allclose(output["data"], want[number], rtol=1e-6, atol=1e-6)
            assert res.headers["x-modelyard-variant"] == variant
            assert res.headers["x-modelyard-model-version"] == f"churn:{number}"
            assert res.headers["x-modelyard-worker"].isdigit()
            ids.add(res.headers["x-modelyard-inference-id"])
    assert len(ids) == 2 * len(bodies), "every response has its own inference id"
    split = infer(http, f"{CHURN}/infer", {"inputs": [tensor(rows)]})
    answer = split.json()
    assert "id" not in answer
    number = int(answer["model_version"])
    assert split.headers["x-modelyard-model-version"] == f"churn:{number}"
    np.testing.assert_allclose(answer["outputs"][0]["data"], want[number], rtol=1e-6, atol=1e-6)
    packed = gzip.compress(orjson.dumps({"inputs": [tensor(rows)]}))
    zipped = infer(http, f"{CHURN}/versions/1/infer", packed, {"content-encoding": "gzip"})
    np.testing.assert_allclose(zipped.json()["outputs"][0]["data"], want[1], rtol=1e-6, atol=1e-6)


def test_text_model_takes_bytes(served: Any, http: httpx.Client) -> None:
    import pandas as pd

    pipeline = served[1]
    reviews = ["a wonderful, moving film", "boring and dull", "superb, loved it"]
    body = {"inputs": [{"name": "review", "datatype": "BYTES", "shape": [3], "data": reviews}]}
    res = infer(http, "/v2/models/reviews/infer", body)
    assert res.status_code == 200, res.text
    (output,) = res.json()["outputs"]
    assert output["datatype"] == "INT64"
    want = pipeline.predict(pd.DataFrame({"review": reviews})).tolist()
    assert output["data"] == want == [1, 0, 1]


def binary_request(rows: np.ndarray, outputs: Any = None) -> tuple[bytes, dict[str, str]]:
    raw = rows.astype("<f8").tobytes()
    header: dict[str, Any] = {
        "inputs": [
            {
                "name": "input-0",
                "datatype": "FP64",
                "shape": list(rows.shape),
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
    if outputs is not None:
        header["outputs"] = outputs
    text = orjson.dumps(header)
    return text + raw, {
        "inference-header-content-length": str(len(text)),
        "content-type": "application/octet-stream",
    }


def test_binary_tensor_data_in_and_out(http: httpx.Client, models: dict[str, Any]) -> None:
    rows = models["x"][5:8]
    want = expected(models, 2, rows)
    body, headers = binary_request(rows)
    res = http.post(f"{CHURN}/versions/2/infer", content=body, headers=headers)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/octet-stream"
    length = int(res.headers["inference-header-content-length"])
    header = orjson.loads(res.content[:length])
    (output,) = header["outputs"]
    assert output["parameters"] == {"binary_data_size": 4 * len(rows)} and "data" not in output
    got = np.frombuffer(res.content[length:], dtype="<f4")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # an output's own binary_data wins over the request's binary_data_output
    body, headers = binary_request(
        rows, [{"name": "output-0", "parameters": {"binary_data": False}}]
    )
    res = http.post(f"{CHURN}/versions/2/infer", content=body, headers=headers)
    assert "inference-header-content-length" not in res.headers
    np.testing.assert_allclose(res.json()["outputs"][0]["data"], want, rtol=1e-6, atol=1e-6)


def test_every_error_class_and_the_server_serves_on(
    served: Any, http: httpx.Client, models: dict[str, Any]
) -> None:
    server = served[0]
    rows = models["x"][:2]
    good = {"inputs": [tensor(rows)]}
    infer_path = f"{CHURN}/versions/2/infer"
    binary_body, binary_headers = binary_request(rows)
    with_true = [[True, *r[1:]] for r in rows.tolist()]  # numbers only, as the protocol says
    with_text = [[*r[:-1], "1.5"] for r in rows.tolist()]
    cases: list[tuple[str, Any, dict[str, str], int, str]] = [
        (infer_path, b'{"inputs": [', {}, 400, "malformed JSON"),
        (infer_path, {"inputs": [{**tensor(rows, flat=True), "shape": [3, N_FEATURES]}]}, {}, 400,
         f"shape [3, {N_FEATURES}] holds {3 * N_FEATURES} elements, data has {2 * N_FEATURES}"),
        (infer_path, {"inputs": [{**tensor(rows), "shape": [N_FEATURES, 2]}]}, {}, 400,
         f"nested as [2, {N_FEATURES}] but the shape is [{N_FEATURES}, 2]"),
        (infer_path, {"inputs": [{**tensor(rows), "datatype": "FLOAT64"}]}, {}, 400,
         "unknown datatype 'FLOAT64'"),
        (infer_path, {"inputs": [{"name": "input-0", "datatype": "BYTES", "shape": [1, N_FEATURES],
                                  "data": ["1.5"] * N_FEATURES}]}, {}, 400,
         "is BYTES, but these features take numbers"),
        (infer_path, {"inputs": [tensor(rows[:, :3])]}, {}, 400, "the model takes 30 features"),
        (infer_path, {"inputs": [{**tensor(rows), "data": with_true}]}, {}, 400,
         "element 1 (index [0, 0]) is not an FP64 value: true"),
        (infer_path, {"inputs": [{**tensor(rows), "data": with_text}]}, {}, 400,
         f"element {N_FEATURES} (index [0, {N_FEATURES - 1}]) is not an FP64 value: \"1.5\""),
        (infer_path, {**good, "outputs": [{"name": "probabilities"}]}, {}, 400,
         "unknown output 'probabilities'"),
        (infer_path, binary_body, {**binary_headers, "inference-header-content-length": "99999"},
         400, "Inference-Header-Content-Length is 99999"),
        (infer_path, binary_body + b"\x00\x00", binary_headers, 400,
         "2 bytes after the JSON object"),
        (infer_path, binary_body, {"content-type": "application/octet-stream"}, 400,
         "binary_data_size but the request has no Inference-Header-Content-Length"),
        ("/v2/models/nope/infer", good, {}, 404, "endpoint 'nope' is not deployed"),
        (f"{CHURN}/versions/7/infer", good, {}, 404, "no variant or model version '7'"),
        ("/v2/models/broken-api/infer", good, {}, 503, "cannot load in the server"),
        (infer_path, good, {"content-encoding": "br"}, 415, "br"),
    ]  # fmt: skip
    for path, body, headers, status, words in cases:
        res = infer(http, path, body, headers)
        assert res.status_code == status, (words, res.text)
        assert words in res.json()["error"], (words, res.json())
        assert res.headers["x-modelyard-inference-id"]
        after = infer(http, infer_path, good)
        assert after.status_code == 200, f"not serving after {words!r}: {after.text}"
    assert http.get(infer_path).status_code == 405
    boom = infer(http, "/v2/models/boom-api/infer", {"inputs": [tensor(np.array([[999.0, 1, 2]]))]})
    assert boom.status_code == 500
    inference_id = boom.headers["x-modelyard-inference-id"]
    assert inference_id in boom.json()["error"] and "RuntimeError" in boom.json()["error"]
    assert "secret internals" not in boom.text
    fine = infer(http, "/v2/models/boom-api/infer", {"inputs": [tensor(np.array([[1.0, 1, 2]]))]})
    assert fine.json()["outputs"][0]["data"] == [4.0], "the server serves on after a model raised"
    answer = raw_request(
        int(server.url.rsplit(":", 1)[1]),
        (
            f"POST {infer_path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {7 * 1024 * 1024}\r\n\r\n"
        ).encode(),
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"error":"request body of 7340032 bytes exceeds the limit' in answer
    assert infer(http, infer_path, good).status_code == 200
    assert server.process.poll() is None
    assert "Exception in ASGI application" not in server.log.read_text()
