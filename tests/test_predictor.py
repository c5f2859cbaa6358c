"""The Predictor without a server: error answers become typed errors (by modelyard's
``error_code``, else SageMaker's ``x-amzn-ErrorType``, else the status), the serving URL comes
from the settings, and ``update_endpoint`` refuses what it cannot do. The workflow against a
real server is in ``tests/e2e/test_predictor.py``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelyard import CSVDeserializer, CSVSerializer, Predictor
from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.errors import (
    EndpointNotFound,
    InvalidInput,
    ModelFailed,
    ModelNotReady,
    ModelyardError,
    ServerTimeout,
    ServerUnreachable,
    SignatureMismatch,
    StorageUnavailable,
)
from modelyard.predictor import error_from_answer

URL = "http://127.0.0.1:1/endpoints/x/invocations"


def answer(status: int, body: object = None, error_type: str | None = None) -> httpx.Response:
    headers = {"x-amzn-errortype": error_type} if error_type else {}
    kwargs = {"json": body} if body is not None else {"content": b"upstream went away"}
    return httpx.Response(status, headers=headers, request=httpx.Request("POST", URL), **kwargs)


@pytest.mark.parametrize(
    ("response", "expected", "message"),
    [
        (answer(400, {"message": "expected 4 features", "error_code": "signature_mismatch"},
                "ValidationError"), SignatureMismatch, "expected 4 features"),
        (answer(404, {"message": "endpoint 'x' is not deployed",
                      "error_code": "endpoint_not_found"}, "ValidationError"),
         EndpointNotFound, "not deployed"),
        (answer(424, {"message": "Received server error (500)", "error_code": "model_failed"},
                "ModelError"), ModelFailed, "Received server error"),
        # Another SageMaker-shaped server: no error_code, the header decides.
        (answer(429, {"message": "loading"}, "ModelNotReadyException"), ModelNotReady, "loading"),
        (answer(503, {"message": "down"}, "ServiceUnavailable"), StorageUnavailable, "down"),
        (answer(400, {"message": "bad"}, "ValidationError"), InvalidInput, "bad"),
        # A proxy's answer: the status decides, the text is quoted.
        (answer(413), InvalidInput, "HTTP 413: upstream went away"),
        (answer(502), ModelyardError, "HTTP 502"),
    ],
)  # fmt: skip
def test_error_answers_become_typed_errors(
    response: httpx.Response, expected: type[ModelyardError], message: str
) -> None:
    error = error_from_answer(response)
    assert type(error) is expected
    assert message in error.message


def test_no_answer_within_the_timeout_is_a_server_timeout() -> None:
    """A server that takes the connection and never answers: the Python Predictor's timeout
    is the same typed error as ``modelyard invoke``'s (a ServerUnreachable, as it was)."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ServerTimeout, match=r"no answer from .* within 0\.5 s"):
            Predictor("api", serving_url=url, request_timeout=0.5).predict([[1, 2, 3, 4]])
    assert issubclass(ServerTimeout, ServerUnreachable)


def test_the_serving_url_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_SERVING_URL", "http://models.internal:9000/")
    assert Predictor("api").serving_url == "http://models.internal:9000"
    assert Predictor("api", serving_url="http://other:1").serving_url == "http://other:1"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home", serving_url="http://127.0.0.1:7"))
    yield p
    p.close()


def test_update_endpoint_needs_one_kind_of_change(platform: Platform) -> None:
    predictor = Predictor("api", platform=platform)
    assert predictor.serving_url == "http://127.0.0.1:7"
    with pytest.raises(InvalidInput, match="model, variants or weights"):
        predictor.update_endpoint()
    with pytest.raises(InvalidInput, match="not both"):
        predictor.update_endpoint("churn:1", variants={"a": "churn:2"})
    with pytest.raises(EndpointNotFound):
        predictor.update_endpoint(weights={"a": 1})


def test_the_sdks_clean_up_calls_run_unchanged(platform: Platform) -> None:
    """SDK notebooks end with ``predictor.delete_model()`` then
    ``predictor.delete_endpoint(delete_endpoint_config=True)``."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    platform.registry.register("churn", model, flavor="sklearn", input_example=frame[:2])
    for name in ("one", "two"):
        platform.endpoints.create(name, {"AllTraffic": "churn:1"})

    predictor = Predictor("one", platform=platform)
    assert predictor.delete_model() is None  # the SageMaker Model: nothing to delete here
    assert platform.registry.get_version("churn:1").ref == "churn:1"  # as S3's model data
    with pytest.raises(InvalidInput, match="delete_endpoint_config must be True or False"):
        predictor.delete_endpoint(delete_endpoint_config="no")  # type: ignore[arg-type]
    assert [e.name for e in platform.endpoints.list_endpoints()] == ["one", "two"]
    predictor.delete_endpoint(delete_endpoint_config=True)
    with pytest.raises(EndpointNotFound):
        platform.endpoints.get("one")
    # The configs are the endpoint's history: they cannot outlive it, and that is said.
    with pytest.warns(UserWarning, match="its configs are its history and go with it"):
        Predictor("two", platform=platform).delete_endpoint(delete_endpoint_config=False)
    assert platform.endpoints.list_endpoints() == []


class _Recorder(BaseHTTPRequestHandler):
    """Answers every POST as a SageMaker endpoint would, keeping the request's headers."""

    seen: list[dict[str, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        seen = {k.lower(): v for k, v in self.headers.items()}
        type(self).seen.append({**seen, ":path": self.path, ":body": body.decode()})
        if self.path.endswith("/feedback"):  # as the server: the endpoint, no outcomes
            name = self.path.split("/")[2]
            body = f'{{"endpoint": "{name}", "results": []}}'.encode()
            media = "application/json"
        else:
            body, media = b"0.5\n", "text/csv"
        self.send_response(200)
        self.send_header("content-type", media)
        self.send_header("x-modelyard-inference-id", f"id-{len(type(self).seen)}")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join()


def test_predict_sends_the_sdks_request_fields_as_boto3_does(
    recorder: tuple[str, list[dict[str, str]]],
) -> None:
    """The SageMaker SDK's predict(data, initial_args, target_model, target_variant,
    inference_id, custom_attributes, component_name) runs unchanged, and each field travels
    in the header boto3's invoke_endpoint puts it in."""
    url, seen = recorder
    with Predictor(
        "api", serving_url=url, serializer=CSVSerializer(), deserializer=CSVDeserializer()
    ) as predictor:
        answer = predictor.predict(
            [[1.0, 2.0]],
            initial_args={"CustomAttributes": "trace=1", "Accept": "text/csv"},
            target_model="m.tar.gz",
            target_variant="blue",
            inference_id="order-17",
            component_name="ic-1",
        )
        assert answer == [["0.5"]]
        predictor.predict([[1.0, 2.0]], initial_args={"CustomAttributes": "x"},
                          custom_attributes="wins")  # fmt: skip
        with pytest.raises(InvalidInput, match="Bodyy"):
            predictor.predict([[1.0]], initial_args={"Bodyy": "x"})
    first, second = seen
    assert first["content-type"] == "text/csv"
    assert first["accept"] == "text/csv"
    assert first["x-amzn-sagemaker-custom-attributes"] == "trace=1"
    assert first["x-amzn-sagemaker-target-model"] == "m.tar.gz"
    assert first["x-amzn-sagemaker-target-variant"] == "blue"
    assert first["x-amzn-sagemaker-inference-id"] == "order-17"
    assert first["x-amzn-sagemaker-inference-component"] == "ic-1"
    assert second["x-amzn-sagemaker-custom-attributes"] == "wins"
    assert len(seen) == 2, "a refused field sends nothing"


def test_the_sdks_constructor_runs_unchanged(
    recorder: tuple[str, list[dict[str, str]]], platform: Platform
) -> None:
    """The SageMaker SDK's Predictor(endpoint_name, sagemaker_session=None, serializer,
    deserializer, component_name=None), by keyword as SDK code usually writes it or by
    position: each was a TypeError. A modelyard Platform is a session (its serving URL is
    used); anything else (a SageMaker SDK Session) is refused naming the argument."""
    url, seen = recorder
    by_keyword = Predictor(
        endpoint_name="api",
        sagemaker_session=None,
        serializer=CSVSerializer(),
        deserializer=CSVDeserializer(),
        serving_url=url,
    )
    by_position = Predictor("api", None, CSVSerializer(), CSVDeserializer(), serving_url=url)
    component = Predictor("api", None, CSVSerializer(), component_name="ic-1", serving_url=url)
    with by_keyword, by_position, component:
        assert by_keyword.predict([[1.0, 2.0]]) == [["0.5"]]
        assert by_position.predict([[1.0, 2.0]]) == [["0.5"]]
        component.predict([[1.0, 2.0]])
        component.predict([[1.0, 2.0]], component_name="ic-2")
    assert [s["content-type"] for s in seen] == ["text/csv"] * 4
    assert [s["accept"] for s in seen[:2]] == ["text/csv"] * 2
    assert [s.get("x-amzn-sagemaker-inference-component") for s in seen] == [
        None, None, "ic-1", "ic-2"
    ]  # fmt: skip
    assert Predictor("api", platform).serving_url == "http://127.0.0.1:7"
    assert Predictor("api", sagemaker_session=platform).serving_url == "http://127.0.0.1:7"
    with pytest.raises(InvalidInput, match="sagemaker_session must be a modelyard Platform"):
        Predictor("api", sagemaker_session=object())
    with pytest.raises(InvalidInput, match="sagemaker_session or platform"):
        Predictor("api", sagemaker_session=platform, platform=platform)


def test_predict_takes_the_sdks_endpoint_name_and_body_in_initial_args(
    recorder: tuple[str, list[dict[str, str]]],
) -> None:
    """The SDK's request arguments may name the endpoint (it is the one invoked) and hold a
    Body (replaced by the data), as its _create_request_args does."""
    url, seen = recorder
    with Predictor("api", serving_url=url, serializer=CSVSerializer()) as predictor:
        predictor.predict([[1.0, 2.0]], initial_args={"EndpointName": "other", "Body": "old"})
        predictor.predict([[3.0, 4.0]])
    assert [(s[":path"], s[":body"].strip()) for s in seen] == [
        ("/endpoints/other/invocations", "1.0,2.0"),
        ("/endpoints/api/invocations", "3.0,4.0"),
    ]


def test_labels_go_to_the_endpoint_that_answered_the_last_request(
    recorder: tuple[str, list[dict[str, str]]],
) -> None:
    """feedback(labels=…) labels the rows of the last request: after a predict that named
    another endpoint in initial_args (as the SDK's EndpointName), its labels go to that
    endpoint, where the prediction was captured; they went to the predictor's own endpoint,
    which answered every one 'unknown'. Items, or labels of an id given, go to the predictor's."""
    url, seen = recorder
    with Predictor("api", serving_url=url, serializer=CSVSerializer()) as predictor:
        predictor.predict([[1.0, 2.0]], initial_args={"EndpointName": "canary"})
        assert predictor.feedback(labels=[1]).endpoint == "canary"
        predictor.feedback([{"inference_id": "id-1", "label": 1}])
        predictor.predict([[3.0, 4.0]])
        assert predictor.feedback(labels=[0]).endpoint == "api"
        predictor.feedback(labels=[1], inference_id="id-1")
    assert [s[":path"] for s in seen] == [
        "/endpoints/canary/invocations",
        "/endpoints/canary/feedback",
        "/endpoints/api/feedback",
        "/endpoints/api/invocations",
        "/endpoints/api/feedback",
        "/endpoints/api/feedback",
    ]
    assert '"id-1"' in seen[1][":body"]
    assert '"id-4"' in seen[4][":body"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"labels": "stay"}, "labels"),  # was sent as ["s", "t", "a", "y"]: row 0 labelled "s"
        ({"labels": b"1"}, "labels"),
        ({"labels": {"row0": 1}}, "labels"),  # its keys were sent as the labels
        ({"labels": pd.DataFrame({"churned": [1, 0]})}, "labels"),  # its column name, "churned"
        ({"labels": np.array([[1], [0]])}, "labels"),
        ({"labels": 1}, "labels"),
        ({"items": {"inference_id": "id-1", "label": 1}}, "items"),  # one item, not a list
        ({"items": "id-1"}, "items"),
    ],
)
def test_feedback_refuses_labels_that_are_not_one_list_of_labels(
    recorder: tuple[str, list[dict[str, str]]], args: dict[str, Any], named: str
) -> None:
    """``labels`` are the labels of the last request's rows, in order, and ``items`` a list of
    items: a string, a mapping or a table given for either was iterated (its characters, keys
    or column names became labels, and the first row was stored with one of them, "accepted").
    Refused, naming the argument, with nothing sent; a 1-D array or Series is taken."""
    url, seen = recorder
    with Predictor("api", serving_url=url, serializer=CSVSerializer()) as predictor:
        predictor.predict([[1.0, 2.0], [3.0, 4.0]])
        with pytest.raises(InvalidInput, match=f"^{named} must be "):
            predictor.feedback(**args)
        assert [s[":path"] for s in seen] == ["/endpoints/api/invocations"], "nothing sent"
        predictor.feedback(labels=pd.Series([1, 0], index=[7, 8]))
        predictor.feedback(labels=np.array([1, 0]))
    both = [
        {"inference_id": "id-1", "row": 0, "label": 1},
        {"inference_id": "id-1", "row": 1, "label": 0},
    ]
    assert [json.loads(s[":body"])["feedback"] for s in seen[1:]] == [both, both]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"initial_args": {"CustomAttributes": "…"}}, "CustomAttributes"),
        ({"initial_args": {"CustomAttributes": 5}}, "CustomAttributes"),
        ({"inference_id": "order\n17"}, "InferenceId"),
        ({"target_variant": "blé"}, "TargetVariant"),
    ],
)
def test_predict_refuses_a_field_a_header_cannot_carry(
    recorder: tuple[str, list[dict[str, str]]], args: dict[str, Any], field: str
) -> None:
    """A request field travels in an HTTP header, so it must be text of printable US-ASCII
    (as InvokeEndpoint's are): anything else is refused naming the field, with nothing sent,
    not a UnicodeEncodeError, a TypeError or a 'cannot reach the server'."""
    url, seen = recorder
    predictor = Predictor("api", serving_url=url, serializer=CSVSerializer())
    with (
        predictor,
        pytest.raises(InvalidInput, match=f"{field} must be text of printable US-ASCII"),
    ):
        predictor.predict([[1.0, 2.0]], **args)
    assert seen == [], "a refused field sends nothing"


class _NotFound(BaseHTTPRequestHandler):
    """A proxy in front of no endpoint: 404 with a page, not a modelyard answer."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(404)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>no such page</html>")

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_the_serving_urls_password_is_never_shown() -> None:
    """A serving URL may carry a gateway's password (httpx sends it as basic auth): errors
    about the server (unreachable, silent, a proxy's own answer) and the repr used to quote
    the URL with it."""
    import socket

    secret = "S3cret-Pw"
    with socket.socket() as refusing:  # bound, not listening: refused, and not taken meanwhile
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
        with pytest.raises(ServerUnreachable) as unreachable:
            Predictor("api", serving_url=f"http://ann:{secret}@127.0.0.1:{port}").predict([[1, 2]])
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://ann:{secret}@127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ServerTimeout) as timeout:
            Predictor("api", serving_url=url, request_timeout=0.5).predict([[1, 2]])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://ann:{secret}@127.0.0.1:{server.server_address[1]}"
        with pytest.raises(InvalidInput) as proxied:
            Predictor("api", serving_url=url).predict([[1, 2]])
    finally:
        server.shutdown()
        server.server_close()
    shown = [str(e.value) for e in (unreachable, timeout, proxied)]
    shown.append(repr(Predictor("api", serving_url=url)))
    for text in shown:
        assert secret not in text and "ann:***@127.0.0.1:" in text, text


def test_a_serving_url_key_given_as_its_user_name_is_never_shown() -> None:
    """``http://KEY@gateway`` carries the key as its user name (httpx sends basic auth): the
    repr and the unreachable-server error quoted it whole."""
    import socket

    with socket.socket() as refusing:  # bound, not listening: refused, and not taken meanwhile
        refusing.bind(("127.0.0.1", 0))
        url = f"http://SECRETAPIKEY@127.0.0.1:{refusing.getsockname()[1]}"
        predictor = Predictor("api", serving_url=url)
        with pytest.raises(ServerUnreachable) as unreachable:
            predictor.predict([[1, 2]])
    assert "SECRETAPIKEY" not in repr(predictor)
    assert "SECRETAPIKEY" not in str(unreachable.value) and "***@127.0.0.1" in str(
        unreachable.value
    )
