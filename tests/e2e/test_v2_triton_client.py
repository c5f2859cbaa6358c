"""Triton's own HTTP client (``tritonclient.http``, unmodified) against a real `modelyard serve`:
every model flavor, with binary tensor data on (its default) and off, answering what the
SageMaker route answers for the same rows, naming the model version, and targeting versions."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard.bootstrap import build
from modelyard.config import load_settings
from modelyard.domain import Trust
from tests.e2e.conftest import MODELYARD, Server, clean_env, free_port
from tests.e2e.test_v2_rest import register_text_model

SUM = """
import numpy as np


class Model:
    def load(self, artifacts_dir):
        pass

    def predict(self, data):
        return np.asarray(data, dtype=float).sum(axis=1)
"""

#: endpoint -> (flavor, how many features a row has)
ENDPOINTS = {
    "churn-api": ("xgboost", 30),
    "lgbm-api": ("lightgbm", 30),
    "logreg-api": ("sklearn", 30),
    "onnx-api": ("onnx", 30),
    "sum-api": ("pyfunc", 3),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Any]) -> Iterator[Any]:
    """One server with an endpoint of every flavor; churn-api has two variants (blue:
    churn:1, green: churn:2)."""
    import lightgbm as lgb
    import pandas as pd
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression, LogisticRegression

    root = tmp_path_factory.mktemp("triton")
    home = root / "home"
    x, names = models["x"], models["names"]
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    example = pd.DataFrame(x[:5], columns=names)
    platform = build(load_settings({}, home=home))
    try:
        registry, endpoints = platform.registry, platform.endpoints
        for booster in models["boosters"][:2]:
            registry.register("churn", booster, flavor="xgboost", input_example=example)
        endpoints.create("churn-api", {"blue": "churn:1", "green": "churn:2"})
        booster = lgb.train(
            {"objective": "regression", "num_threads": 1, "verbose": -1},
            lgb.Dataset(pd.DataFrame(x, columns=names), label=x[:, 0]),
            num_boost_round=10,
        )
        registry.register("lgbm", booster, flavor="lightgbm", input_example=example)
        endpoints.create("lgbm-api", {"main": "lgbm:1"})
        logreg = LogisticRegression(max_iter=500).fit(x, y)
        registry.register("logreg", logreg, flavor="sklearn", input_example=x[:5])
        endpoints.create("logreg-api", {"main": "logreg:1"})
        proto = to_onnx(LinearRegression().fit(x, x[:, 2]), x[:1].astype(np.float32))
        registry.register("linear", proto, flavor="onnx", input_example=x[:5])
        endpoints.create("onnx-api", {"main": "linear:1"})
        code = root / "sum"
        code.mkdir()
        (code / "model.py").write_text(SUM)
        registry.register(
            "sum", code, flavor="pyfunc", input_example=x[:5, :3], trust=Trust(user_code=True)
        )
        endpoints.create("sum-api", {"main": "sum:1"})
        pipeline = register_text_model(platform, "sentiment")
        endpoints.create("reviews", {"main": "sentiment:1"})
    finally:
        platform.close()
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [MODELYARD, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=clean_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        server.wait_ready()
        yield server, pipeline
    finally:
        server.stop()


@pytest.fixture(scope="module")
def triton(served: Any) -> Iterator[Any]:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=served[0].url.removeprefix("http://"))
    yield client
    client.close()


def sagemaker(server: Server, endpoint: str, rows: np.ndarray, variant: str | None = None) -> Any:
    headers = {"x-amzn-sagemaker-target-variant": variant} if variant else {}
    res = httpx.post(
        f"{server.url}/endpoints/{endpoint}/invocations",
        json={"instances": rows.tolist()},
        headers=headers,
        timeout=10,
    )
    assert res.status_code == 200, res.text
    return res.json()["predictions"]


def v2_infer(
    triton: Any, endpoint: str, rows: np.ndarray, binary: bool, version: str = "", **kw: Any
) -> Any:
    import tritonclient.http as httpclient

    datatype = "FP32" if rows.dtype == np.float32 else "FP64"
    tensor = httpclient.InferInput("input-0", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("output-0", binary_data=binary)]
    return triton.infer(endpoint, [tensor], model_version=version, outputs=outputs, **kw)


def test_health_and_metadata_of_every_flavor(triton: Any) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    server = triton.get_server_metadata()
    assert server["name"] == "modelyard" and "binary_tensor_data" in server["extensions"]
    for endpoint, (flavor, width) in ENDPOINTS.items():
        described = triton.get_model_metadata(endpoint)
        assert described["platform"] == flavor, described
        (tensor,) = described["inputs"]
        assert tensor["name"] == "input-0" and tensor["shape"] == [-1, width]
        assert [o["name"] for o in described["outputs"]] == ["output-0"]
        assert triton.is_model_ready(endpoint)
    assert triton.get_model_metadata("churn-api", "2")["versions"] == ["1", "2"]
    assert triton.is_model_ready("churn-api", "green")
    assert not triton.is_model_ready("churn-api", "9")
    assert not triton.is_model_ready("nope")
    text = triton.get_model_metadata("reviews")
    assert text["inputs"] == [{"name": "review", "datatype": "BYTES", "shape": [-1]}]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("endpoint", sorted(set(ENDPOINTS) - {"churn-api"}))
def test_every_flavor_answers_as_the_sagemaker_route(
    served: Any, triton: Any, models: dict[str, Any], endpoint: str, binary: bool
) -> None:
    width = ENDPOINTS[endpoint][1]
    rows = np.ascontiguousarray(models["x"][10:16, :width])
    result = v2_infer(triton, endpoint, rows, binary)
    got = result.as_numpy("output-0")
    want = np.asarray(sagemaker(served[0], endpoint, rows))
    assert got.shape[0] == len(rows)
    np.testing.assert_array_equal(got, want.reshape(got.shape).astype(got.dtype))
    answer = result.get_response()
    assert (answer["model_name"], answer["model_version"]) == (endpoint, "1")
    assert ("parameters" in answer["outputs"][0]) == binary  # binary_data_size, or data


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_versions_of_an_endpoint_by_number_and_variant(
    served: Any, triton: Any, models: dict[str, Any], binary: bool
) -> None:
    rows = np.ascontiguousarray(models["x"][20:25])
    for version, variant, number in (("1", "blue", "1"), ("green", "green", "2")):
        result = v2_infer(triton, "churn-api", rows, binary, version=version, request_id="r-7")
        answer = result.get_response()
        assert (answer["model_version"], answer["id"]) == (number, "r-7")
        want = np.asarray(sagemaker(served[0], "churn-api", rows, variant), dtype=np.float32)
        np.testing.assert_array_equal(result.as_numpy("output-0"), want)
    split = v2_infer(triton, "churn-api", rows, binary)
    assert split.get_response()["model_version"] in ("1", "2")


def test_float32_input_compressed_request_and_default_binary_output(
    served: Any, triton: Any, models: dict[str, Any]
) -> None:
    import tritonclient.http as httpclient

    rows = models["x"][30:34].astype(np.float32)
    tensor = httpclient.InferInput("input-0", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)  # binary by default; no outputs: binary_data_output
    result = triton.infer(
        "lgbm-api", [tensor], model_version="1", request_compression_algorithm="gzip"
    )
    assert result.get_output("output-0")["parameters"]["binary_data_size"] == 8 * len(rows)
    want = sagemaker(served[0], "lgbm-api", rows.astype(np.float64))
    np.testing.assert_array_equal(result.as_numpy("output-0"), want)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_text_classifier_takes_bytes(served: Any, triton: Any, binary: bool) -> None:
    import pandas as pd
    import tritonclient.http as httpclient

    reviews = ["a wonderful, moving film", "boring and dull", "brilliant — loved it"]
    tensor = httpclient.InferInput("review", [len(reviews)], "BYTES")
    tensor.set_data_from_numpy(np.array(reviews, dtype=object), binary_data=binary)
    output = httpclient.InferRequestedOutput("output-0", binary_data=binary)
    result = triton.infer("reviews", [tensor], outputs=[output])
    want = served[1].predict(pd.DataFrame({"review": reviews}))
    np.testing.assert_array_equal(result.as_numpy("output-0"), want)
    assert want.tolist() == [1, 0, 1]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_bool_tensors_as_tritonclient_sends_them(triton: Any, binary: bool) -> None:
    """A np.bool_ array set with set_data_from_numpy (binary: one byte an element, which the
    server holds the binary_data_size to) reaches a numeric model as 1.0 and 0.0, as the same
    rows sent as FP64 do."""
    import tritonclient.http as httpclient

    flags = np.array([[True, False, True], [False, False, False], [True, True, True]])
    tensor = httpclient.InferInput("input-0", list(flags.shape), "BOOL")
    tensor.set_data_from_numpy(flags, binary_data=binary)
    output = httpclient.InferRequestedOutput("output-0", binary_data=binary)
    result = triton.infer("sum-api", [tensor], outputs=[output])
    np.testing.assert_array_equal(result.as_numpy("output-0"), [2.0, 0.0, 3.0])
    as_numbers = v2_infer(triton, "sum-api", flags.astype(np.float64), binary)
    np.testing.assert_array_equal(result.as_numpy("output-0"), as_numbers.as_numpy("output-0"))


def test_errors_reach_the_client_as_the_protocol_says(triton: Any, models: dict[str, Any]) -> None:
    from tritonclient.utils import InferenceServerException

    rows = np.ascontiguousarray(models["x"][:2, :5])
    with pytest.raises(InferenceServerException) as caught:
        v2_infer(triton, "churn-api", rows, binary=True)
    assert caught.value.status() == "400"
    assert "the model takes 30 features" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        v2_infer(triton, "churn-api", models["x"][:2], binary=False, version="8")
    assert caught.value.status() == "404"
    with pytest.raises(InferenceServerException) as caught:
        triton.get_model_metadata("nope")
    assert caught.value.status() == "404" and "not deployed" in caught.value.message()
