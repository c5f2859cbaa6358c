"""The Open Inference Protocol V2 over gRPC, through a real `modelyard serve --grpc-port N
--workers 2`: Triton's own client (`tritonclient.grpc`, which sends raw tensor bytes), and plain
gRPC stubs from our .proto sending typed `contents`.

Every model flavor answers as it does on the SageMaker route; health, metadata, readiness,
version targeting; each error class with its status code, and the server keeps serving after
each.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import orjson
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Trust
from modelyard.serving.v2 import grpc_predict_v2_pb2 as pb
from modelyard.serving.v2 import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.e2e.conftest import MODELYARD, Server, clean_env, free_port
from tests.serving.metrics_support import parse, total
from tests.waiting import wait_for

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

N_FEATURES = 8
#: endpoint -> flavor: one endpoint per model flavor, each with one variant.
FLAVORS = {"xgb": "xgboost", "lgb": "lightgbm", "skl": "sklearn", "onx": "onnx", "pyf": "pyfunc"}
WORDS = ["wonderful", "awful", "brilliant", "boring"]  # good, bad, good, bad
PYFUNC = """
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


@dataclass
class Served:
    server: Server
    grpc_url: str
    rows: np.ndarray
    fragile_blobs: list[tuple[Path, Path]]  # (where it belongs, where it is kept meanwhile)

    def triton(self) -> triton.InferenceServerClient:
        return triton.InferenceServerClient(self.grpc_url)

    def stub(self, fresh: bool = False) -> tuple[grpc.Channel, pb_grpc.GRPCInferenceServiceStub]:
        # A local subchannel pool makes each channel its own connection (so its own worker).
        options = [("grpc.use_local_subchannel_pool", 1)] if fresh else []
        channel = grpc.insecure_channel(self.grpc_url, options=options)
        return channel, pb_grpc.GRPCInferenceServiceStub(channel)

    def sagemaker(self, endpoint: str, rows: np.ndarray, variant: str | None = None) -> Any:
        headers = {"x-amzn-sagemaker-target-variant": variant} if variant else {}
        res = httpx.post(
            f"{self.server.url}/endpoints/{endpoint}/invocations",
            content=orjson.dumps(rows.tolist()),
            headers={"content-type": "application/json", **headers},
            timeout=10,
        )
        assert res.status_code == 200, res.text
        return np.asarray(res.json()["predictions"])


def _register(platform: Platform, tmp: Path) -> np.ndarray:
    import lightgbm as lgb
    import pandas as pd
    import xgboost as xgb
    from skl2onnx import to_onnx
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    x, y = make_classification(n_samples=400, n_features=N_FEATURES, random_state=5)
    names = [f"f{i}" for i in range(N_FEATURES)]
    frame = pd.DataFrame(x, columns=names)
    registry = platform.registry
    for depth, rounds in ((2, 4), (3, 8)):  # churn:1 and churn:2 answer differently
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": depth, "nthread": 1},
            xgb.DMatrix(frame, label=y),
            num_boost_round=rounds,
        )
        registry.register("churn", booster, flavor="xgboost", input_example=frame[:5])
    lgbm = lgb.LGBMClassifier(n_estimators=8, num_leaves=5, verbose=-1, n_jobs=1)
    registry.register("lgb", lgbm.fit(frame, y), flavor="lightgbm", input_example=frame[:5])
    logistic = LogisticRegression(max_iter=1000).fit(x, y)
    registry.register("skl", logistic, flavor="sklearn", input_example=x[:5])
    x32 = x.astype(np.float32)
    onnx_model = to_onnx(LogisticRegression(max_iter=1000).fit(x32, y), x32[:1])
    registry.register("onx", onnx_model, flavor="onnx", input_example=x32[:5])
    code = tmp / "pyfunc"
    code.mkdir()
    (code / "model.py").write_text(PYFUNC)
    trusted = Trust(user_code=True)
    registry.register("pyf", code, flavor="pyfunc", input_example=x[:5], trust=trusted)
    texts = pd.DataFrame({"review": [f"the film was {w}" for w in WORDS * 10]})
    labels = ["good" if i % 2 == 0 else "bad" for i in range(len(texts))]
    vectorize = ColumnTransformer([("words", HashingVectorizer(n_features=64), "review")])
    reviews = make_pipeline(vectorize, LogisticRegression(max_iter=1000)).fit(texts, labels)
    registry.register("txt", reviews, flavor="sklearn", input_example=texts[:3])
    fragile = xgb.train({"max_depth": 1, "nthread": 1}, xgb.DMatrix(frame, label=y), 2)
    registry.register("fragile", fragile, flavor="xgboost", input_example=frame[:5])

    endpoints = platform.endpoints
    endpoints.create("xgb", {"main": "churn:2"})
    for endpoint in ("lgb", "skl", "onx", "pyf", "txt"):
        endpoints.create(endpoint, {"main": f"{endpoint}:1"})
    endpoints.create("split", {"blue": "churn:1", "green": "churn:2"}, {"blue": 3, "green": 1})
    endpoints.create("fragile", {"main": "fragile:1"})
    return x


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("grpc")
    platform = build(load_settings({}, home=tmp / "home"))
    try:
        rows = _register(platform, tmp)
        # fragile:1's package goes missing before the server starts: it cannot load it until
        # a test puts it back.
        digest = platform.registry.get_version("fragile:1").artifact_digest
        home = platform.settings.home
        blobs = [p for p in home.rglob(f"*{digest}*") if p.is_file()]
    finally:
        platform.close()
    assert blobs, "the test must find the package it breaks"
    kept = tmp / "kept"
    kept.mkdir()
    fragile_blobs = [(blob, kept / blob.name) for blob in blobs]
    for blob, aside in fragile_blobs:
        shutil.move(blob, aside)
    port, grpc_port = free_port(), free_port()
    log = tmp / "server.log"
    argv = [MODELYARD, "serve", "--port", str(port), "--grpc-port", str(grpc_port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv, "--workers", "2", "--max-payload-mb", "1"],
            env=clean_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    served = Served(server, f"127.0.0.1:{grpc_port}", rows, fragile_blobs)
    try:
        # Not ready (fragile cannot load): wait until the gRPC service answers instead. Two
        # workers each import four model libraries and load eight models: on a loaded CI
        # machine that takes longer than the usual deadline.
        wait_for("the gRPC service live", lambda: _live(served, process, log), timeout=180)
        yield served
    finally:
        server.stop()


def _live(served: Served, process: subprocess.Popen[bytes], log: Path) -> bool:
    assert process.poll() is None, log.read_text()[-3000:]
    try:
        with served.triton() as client:
            if not client.is_server_live(client_timeout=2):
                return False
    except InferenceServerException:
        return False
    # The HTTP side too: a worker may answer gRPC before the HTTP socket takes connections.
    try:
        return httpx.get(f"{served.server.url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _infer(
    client: triton.InferenceServerClient,
    endpoint: str,
    rows: np.ndarray,
    datatype: str = "FP64",
    version: str = "",
) -> Any:
    tensor = triton.InferInput("input-0", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows)
    return client.infer(endpoint, [tensor], model_version=version, request_id="req-7")


def _status(error: pytest.ExceptionInfo[InferenceServerException]) -> str:
    return str(error.value.status())


def test_every_flavor_answers_as_on_the_sagemaker_route(served: Served) -> None:
    rows = served.rows[:6]
    with served.triton() as client:
        for endpoint, flavor in FLAVORS.items():
            want = served.sagemaker(endpoint, rows)
            datatype, data = (
                ("FP32", rows.astype(np.float32)) if flavor == "onnx" else ("FP64", rows)
            )
            result = _infer(client, endpoint, data, datatype)
            got = result.as_numpy("output-0")
            assert got is not None, (endpoint, result.get_response())
            np.testing.assert_allclose(
                got.reshape(want.shape), want, rtol=1e-6, atol=1e-6, err_msg=flavor
            )
            response = result.get_response()
            assert response.model_name == endpoint
            assert response.model_version == ("2" if endpoint == "xgb" else "1")
            assert response.id == "req-7"
            # Triton's client sent raw bytes, so the answer came raw.
            assert len(response.raw_output_contents) == 1, flavor
            assert not response.outputs[0].HasField("contents"), flavor


def test_typed_contents_through_plain_stubs(served: Served) -> None:
    rows = served.rows[:3]
    want = served.sagemaker("skl", rows)
    channel, stub = served.stub()
    with channel:
        request = pb.ModelInferRequest(model_name="skl", id="typed-1")
        tensor = request.inputs.add(name="input-0", datatype="FP64", shape=list(rows.shape))
        tensor.contents.fp64_contents.extend(rows.ravel().tolist())
        response, call = stub.ModelInfer.with_call(request, timeout=10)
        output = response.outputs[0]
        assert not response.raw_output_contents
        assert output.name == "output-0" and list(output.shape) == [3]
        assert output.datatype == "INT64"  # scikit-learn's labels
        assert list(output.contents.int64_contents) == want.tolist()
        assert response.id == "typed-1" and response.model_version == "1"
        trailing = dict(call.trailing_metadata())
        assert trailing["x-modelyard-variant"] == "main"
        assert trailing["x-modelyard-model-version"] == "skl:1"
        assert len(trailing["x-modelyard-inference-id"]) == 32
        assert trailing["x-modelyard-worker"].isdigit()

        # One FP32 tensor per feature, by the signature's names (the features of the xgboost
        # model are named f0…f7), in another order than the model's.
        want = served.sagemaker("xgb", rows)
        request = pb.ModelInferRequest(model_name="xgb")
        for i in reversed(range(N_FEATURES)):
            column = request.inputs.add(name=f"f{i}", datatype="FP32", shape=[3])
            column.contents.fp32_contents.extend(rows[:, i].astype(np.float32).tolist())
        got = stub.ModelInfer(request, timeout=10).outputs[0]
        assert got.datatype == "FP32"
        np.testing.assert_allclose(got.contents.fp32_contents, want, rtol=1e-6, atol=1e-6)


def test_text_in_and_labels_out_as_bytes(served: Served) -> None:
    # (The SageMaker route's JSON and CSV carry numbers only: no comparison with it here.)
    reviews = np.array([b"the film was wonderful", b"the film was boring"], dtype=object)
    want = ["good", "bad"]
    with served.triton() as client:  # raw: 4-byte little-endian lengths, then the bytes
        tensor = triton.InferInput("review", [2], "BYTES")
        tensor.set_data_from_numpy(reviews)
        result = client.infer("txt", [tensor])
        assert result.get_response().outputs[0].datatype == "BYTES"
        assert [v.decode() for v in result.as_numpy("output-0")] == want
    channel, stub = served.stub()
    with channel:  # typed: bytes_contents
        request = pb.ModelInferRequest(model_name="txt")
        typed = request.inputs.add(name="review", datatype="BYTES", shape=[2])
        typed.contents.bytes_contents.extend(reviews.tolist())
        output = stub.ModelInfer(request, timeout=10).outputs[0]
        assert [v.decode() for v in output.contents.bytes_contents] == want


def test_health_and_metadata(served: Served) -> None:
    with served.triton() as client:
        assert client.is_server_live()
        assert client.is_model_ready("xgb")
        assert client.is_model_ready("split", "1") and client.is_model_ready("split", "green")
        meta = client.get_server_metadata()
        assert meta.name == "modelyard" and meta.version
        model = client.get_model_metadata("xgb")
        assert model.name == "xgb" and model.platform == "xgboost"
        assert list(model.versions) == ["2"]
        [tensor] = model.inputs
        assert (tensor.name, list(tensor.shape)) == ("input-0", [-1, N_FEATURES])
        assert model.outputs[0].name == "output-0"
        onnx_input = client.get_model_metadata("onx").inputs[0]
        assert onnx_input.datatype == "FP32"  # the ONNX model takes float32
        split = client.get_model_metadata("split")
        assert list(split.versions) == ["1", "2"]
        assert client.get_model_metadata("split", "green").platform == "xgboost"
        # Not deployed is not ready, as Triton answers and as tritonclient.http reads the
        # REST 404: a caller polling until its model is deployed gets False, not an error.
        assert not client.is_model_ready("nope")
        assert not client.is_model_ready("split", "9")
        for call in (
            lambda: client.get_model_metadata("nope"),
            lambda: client.get_model_metadata("split", "purple"),
        ):
            with pytest.raises(InferenceServerException) as caught:
                call()
            assert _status(caught) == "StatusCode.NOT_FOUND", caught.value


def test_a_version_or_variant_answers_when_named(served: Served) -> None:
    rows = served.rows[:4]
    blue, green = served.sagemaker("split", rows, "blue"), served.sagemaker("split", rows, "green")
    assert not np.allclose(blue, green), "the two versions must answer differently"
    with served.triton() as client:
        for version, want, number in (("1", blue, "1"), ("2", green, "2"), ("green", green, "2")):
            for _ in range(5):  # the split (3:1) would answer with either
                result = _infer(client, "split", rows, version=version)
                assert result.get_response().model_version == number
                np.testing.assert_allclose(result.as_numpy("output-0"), want, rtol=1e-6, atol=1e-6)
        seen = {_infer(client, "split", rows).get_response().model_version for _ in range(200)}
        assert seen == {"1", "2"}, "without a version, the endpoint's split routes"
        for key in ("user-1", "user-2", "user-3"):
            sticky = {
                client.infer("split", [_input(rows)], headers={"x-modelyard-routing-key": key})
                .get_response()
                .model_version
                for _ in range(20)
            }
            assert len(sticky) == 1, (key, sticky)


def test_every_error_class_has_its_status_and_the_server_goes_on(served: Served) -> None:
    rows = served.rows[:2]
    too_big = np.zeros((20_000, N_FEATURES))  # 1.28 MB of FP64: over the 1 MB limit
    bad_raw = _input(rows)
    bad_raw.set_shape([3, N_FEATURES])  # 2 rows of bytes for 3
    cases: list[tuple[str, Any, str, str]] = [
        ("unknown model", lambda c: _infer(c, "nope", rows), "NOT_FOUND", "'nope'"),
        ("unknown version", lambda c: _infer(c, "xgb", rows, version="7"), "NOT_FOUND", "'7'"),
        (  # int() of over 4300 digits raises ValueError: an INTERNAL once
            "a version of 5000 digits",
            lambda c: _infer(c, "xgb", rows, version="9" * 5000),
            "NOT_FOUND",
            "no variant or model version '999",
        ),
        ("wrong width", lambda c: _infer(c, "xgb", rows[:, :3]), "INVALID_ARGUMENT", "8 features"),
        ("short raw data", lambda c: c.infer("xgb", [bad_raw]), "INVALID_ARGUMENT", "needs 192"),
        (
            "unknown output",
            lambda c: c.infer("xgb", [_input(rows)], outputs=[triton.InferRequestedOutput("x")]),
            "INVALID_ARGUMENT",
            "unknown output",
        ),
        ("over the limit", lambda c: _infer(c, "xgb", too_big), "RESOURCE_EXHAUSTED", "larger"),
        (
            "the model raised",
            lambda c: _infer(c, "pyf", np.full((1, N_FEATURES), 999.0)),
            "INTERNAL",
            "RuntimeError",
        ),
    ]
    want = served.sagemaker("xgb", rows)
    with served.triton() as client:
        for what, call, status, words in cases:
            with pytest.raises(InferenceServerException) as caught:
                call(client)
            assert _status(caught) == f"StatusCode.{status}", (what, caught.value)
            assert words in caught.value.message(), (what, caught.value)
            assert "secret internals" not in caught.value.message()
            np.testing.assert_allclose(
                _infer(client, "xgb", rows).as_numpy("output-0"),
                want,
                rtol=1e-6,
                atol=1e-6,
                err_msg=what,
            )
    log = served.server.log.read_text()
    assert "Unexpected" not in log and "Exception calling application" not in log, log[-3000:]


def test_bytes_that_are_not_a_protobuf_message_are_an_invalid_argument(served: Served) -> None:
    garbage = b"\xff\xff\xff\xff\x0fnot a protobuf message"
    with grpc.insecure_channel(served.grpc_url) as channel:
        for rpc in ("ModelInfer", "ModelReady", "ServerLive", "ModelMetadata"):
            call = channel.unary_unary(f"/inference.GRPCInferenceService/{rpc}")  # bytes as is
            with pytest.raises(grpc.RpcError) as caught:
                call(garbage, timeout=30)
            error: Any = caught.value
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (rpc, error)
            words = f"not a valid inference.{rpc}Request protobuf message"
            assert words in error.details(), (rpc, error.details())
        # The same channel goes on: a well-formed call still answers.
        live = channel.unary_unary("/inference.GRPCInferenceService/ServerLive")
        answer = pb.ServerLiveResponse.FromString(live(b"", timeout=30))
        assert answer.live
    log = served.server.log.read_text()
    assert "DecodeError" not in log, log[-3000:]
    # The inference is counted among the requests refused, with no endpoint (its name was in
    # the bytes that could not be read); the health and metadata rpcs are not requests.
    unreadable = {"endpoint": "", "protocol": "v2-grpc", "status": "400", "code": "invalid_payload"}

    def counted() -> float:
        with httpx.Client(base_url=served.server.url, timeout=30) as http:
            samples = parse(http.get("/metrics").text)
        return total(samples, "modelyard_request_errors_total", **unreadable)

    wait_for("the unreadable inference counted", counted, lambda n: n == 1)


def _input(rows: np.ndarray) -> triton.InferInput:
    tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    return tensor


def test_typed_input_errors_and_the_inference_id_of_a_model_failure(served: Served) -> None:
    channel, stub = served.stub()
    with channel:

        def refused(request: pb.ModelInferRequest) -> grpc.RpcError:
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request, timeout=10)
            error: grpc.RpcError = caught.value
            return error

        cases = []
        wrong_field = pb.ModelInferRequest(model_name="xgb")
        tensor = wrong_field.inputs.add(name="input-0", datatype="FP64", shape=[1, N_FEATURES])
        tensor.contents.int64_contents.extend([1] * N_FEATURES)
        cases.append((wrong_field, "fp64_contents"))
        unknown_type = pb.ModelInferRequest(model_name="xgb")
        unknown_type.inputs.add(name="input-0", datatype="FP128", shape=[1, 1])
        cases.append((unknown_type, "FP128"))
        miscounted = pb.ModelInferRequest(model_name="xgb")
        tensor = miscounted.inputs.add(name="input-0", datatype="FP64", shape=[2, N_FEATURES])
        tensor.contents.fp64_contents.extend([0.5] * N_FEATURES)
        cases.append((miscounted, "holds 16 elements"))
        mixed = pb.ModelInferRequest(model_name="xgb", raw_input_contents=[b"\0" * 64])
        tensor = mixed.inputs.add(name="input-0", datatype="FP64", shape=[1, N_FEATURES])
        tensor.contents.fp64_contents.extend([0.5] * N_FEATURES)
        cases.append((mixed, "one or the other"))
        cases.append((pb.ModelInferRequest(model_name="xgb"), "no inputs"))
        for request, words in cases:
            error = refused(request)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (words, error)
            assert words in error.details(), (words, error.details())

        boom = pb.ModelInferRequest(model_name="pyf")
        tensor = boom.inputs.add(name="input-0", datatype="FP64", shape=[1, N_FEATURES])
        tensor.contents.fp64_contents.extend([999.0] * N_FEATURES)
        error = refused(boom)
        assert error.code() == grpc.StatusCode.INTERNAL
        trailing = dict(error.trailing_metadata())
        assert trailing["x-modelyard-inference-id"] in error.details()
        assert trailing["x-modelyard-model-version"] == "pyf:1"
        assert "secret internals" not in error.details()


def test_the_workers_share_the_grpc_port(served: Served) -> None:
    request = pb.ModelInferRequest(model_name="pyf")
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[1, N_FEATURES])
    tensor.contents.fp64_contents.extend([1.0] * N_FEATURES)

    def workers_seen(seen: set[str] = set()) -> set[str]:  # noqa: B006 - accumulates
        channel, stub = served.stub(fresh=True)
        with channel:
            _, call = stub.ModelInfer.with_call(request, timeout=10)
        seen.add(dict(call.trailing_metadata())["x-modelyard-worker"])
        return seen

    wait_for("answers from both workers on one gRPC port", workers_seen, lambda s: len(s) == 2)


def _health(channel: grpc.Channel, service: str = "") -> Any:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def test_a_model_that_could_not_load_is_unavailable_until_it_can(served: Served) -> None:
    with served.triton() as client:
        assert not client.is_model_ready("fragile")
        assert not client.is_server_ready()
        with pytest.raises(InferenceServerException) as caught:
            _infer(client, "fragile", served.rows[:1])
        assert _status(caught) == "StatusCode.UNAVAILABLE"
    # The gRPC health checking protocol (Kubernetes' grpc probes) says the same.
    channel, _ = served.stub()
    with channel:
        for service in ("", "inference.GRPCInferenceService"):
            assert _health(channel, service) == NOT_SERVING
        with pytest.raises(grpc.RpcError) as unknown:
            _health(channel, "inference.Other")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    watching, _ = served.stub(fresh=True)
    watch = health_pb2_grpc.HealthStub(watching).Watch(health_pb2.HealthCheckRequest())
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.extend(m.status for m in _until_serving(watch)))
    reader.start()
    for blob, aside in served.fragile_blobs:
        shutil.move(aside, blob)

    request = pb.ModelInferRequest(model_name="fragile")
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[1, N_FEATURES])
    tensor.contents.fp64_contents.extend(served.rows[0].astype(float).tolist())

    def workers_serving(serving: set[str] = set()) -> set[str]:  # noqa: B006 - accumulates
        # Each fresh connection lands on one worker; each worker reloads on its own poll.
        channel, stub = served.stub(fresh=True)
        with channel:  # one channel, one connection, one worker
            try:
                _, call = stub.ModelInfer.with_call(request, timeout=10)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                return serving
            # The worker that just answered has it loaded, so it must say it is ready.
            assert stub.ModelReady(pb.ModelReadyRequest(name="fragile"), timeout=10).ready
            assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
            assert _health(channel) == SERVING
        serving.add(dict(call.trailing_metadata())["x-modelyard-worker"])
        return serving

    wait_for("fragile served by both workers", workers_serving, lambda s: len(s) == 2)
    reader.join(120)  # its worker loaded the model too: the stream said so
    watching.close()
    assert seen == [NOT_SERVING, SERVING]
    with served.triton() as client:
        assert _infer(client, "fragile", served.rows[:2]).as_numpy("output-0").shape == (2,)


def _until_serving(stream: Any) -> Iterator[Any]:
    """The Watch stream's messages up to the first SERVING one."""
    for message in stream:
        yield message
        if message.status == SERVING:
            stream.cancel()
            return


def test_serve_refuses_a_grpc_port_it_cannot_use(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    port = free_port()
    same = subprocess.run(
        [MODELYARD, "serve", "--port", str(port), "--grpc-port", str(port)],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert same.returncode == 2, same.stderr
    assert b"--grpc-port must differ from --port" in same.stderr
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        busy = subprocess.run(
            [MODELYARD, "serve", "--port", str(free_port()), "--grpc-port", str(taken)],
            env=env,
            capture_output=True,
            timeout=60,
        )
    assert busy.returncode == 9, busy.stderr
    assert b"pass another --grpc-port" in busy.stderr
