"""Property-based requests against a real ``modelyard serve`` (issue 14's fuzzing layer).

Generated bodies, content types, encodings, accept headers and endpoint paths go over HTTP to
one server. Whatever arrives, the answer is a documented status (200, 400, 404, 406, 413 or
415), never a 500 and never a dropped connection; an error names its code and says why without
echoing a long value whole; and
the server keeps answering a well-formed request correctly after every hostile one.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelyard.bootstrap import build
from modelyard.config import load_settings
from tests.e2e.conftest import MODELYARD, N_FEATURES, Server, clean_env, free_port

OK_STATUSES = {200, 400, 404, 406, 413, 415}
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, models: dict[str, Any]
) -> Iterator[tuple[Server, httpx.Client]]:
    """One server for the module, endpoint ``api`` = churn:1, a 64 KiB payload limit."""
    import subprocess

    import pandas as pd

    folder = tmp_path_factory.mktemp("props-serve")
    home = folder / "home"
    p = build(load_settings({}, home=home))
    try:
        example_rows = pd.DataFrame(models["x"][:5], columns=models["names"])
        p.registry.register(
            "churn", models["boosters"][0], flavor="xgboost", input_example=example_rows
        )
        p.endpoints.create("api", {"main": "churn:1"})
    finally:
        p.close()
    port = free_port()
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [MODELYARD, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=clean_env(home, MODELYARD_MAX_PAYLOAD_BYTES=str(LIMIT)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    srv = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        srv.wait_ready()
        with srv.client() as client:
            yield srv, client
    finally:
        srv.stop()


good_row = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=N_FEATURES, max_size=N_FEATURES)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.lists(good_row, min_size=1, max_size=3).map(orjson.dumps),
    st.lists(good_row, min_size=1, max_size=3).map(
        lambda rows: "\n".join(",".join(repr(x) for x in r) for r in rows).encode()
    ),
    st.integers(LIMIT - 10, LIMIT + 10).map(lambda n: b"1," * (n // 2)),
)
content_types = st.sampled_from(
    [None, "application/json", "text/csv", "text/csv; charset=utf-8", "text/plain",
     "application/x-npy", "multipart/form-data; boundary=x", "", "text/csv;;;=="]
)  # fmt: skip
encodings = st.sampled_from([None, "gzip", "deflate", "br", "identity", "gzip, gzip", "x" * 300])
accepts = st.sampled_from([None, "*/*", "text/csv", "application/json", "image/png", "x" * 500])
names = st.sampled_from(["api", "nope", "a" * 300, "api%00", "..%2F..%2Fetc", "%E2%80%A8"])


def expected_ok(client: httpx.Client, models: dict[str, Any]) -> None:
    """A well-formed request is still answered with the model's own prediction."""
    import xgboost as xgb

    row = models["x"][:1]
    answer = client.post("/endpoints/api/invocations", content=orjson.dumps(row.tolist()),
                         headers={"content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    booster = models["boosters"][0]
    want = booster.predict(xgb.DMatrix(row, feature_names=models["names"]))
    assert np.allclose(answer.json()["predictions"], want, rtol=1e-6, atol=1e-6)


@settings(max_examples=120)
@given(
    name=names, body=bodies, content_type=content_types, encoding=encodings, accept=accepts,
    compress=st.booleans(),
)  # fmt: skip
@example(name="api", body=gzip.compress(bytes(LIMIT * 4)), content_type="text/csv",
         encoding="gzip", accept=None, compress=False)  # fmt: skip
@example(name="api", body=b"\xef\xbb\xbf" + b"1," * 29 + b"1", content_type="text/csv",
         encoding=None, accept="text/csv", compress=True)  # fmt: skip
def test_any_request_gets_a_documented_status_and_the_server_keeps_serving(
    server: tuple[Server, httpx.Client], models: dict[str, Any], name: str, body: bytes,
    content_type: str | None, encoding: str | None, accept: str | None, compress: bool,
) -> None:  # fmt: skip
    srv, client = server
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["content-type"] = content_type
    if accept is not None:
        headers["accept"] = accept
    if encoding is not None:
        headers["content-encoding"] = encoding
        if compress and encoding == "gzip":
            body = gzip.compress(body)
    answer = client.post(f"/endpoints/{name}/invocations", content=body, headers=headers)
    assert answer.status_code in OK_STATUSES, (answer.status_code, answer.text[:500])
    if answer.status_code != 200:
        error = answer.json()
        assert (
            answer.headers["x-amzn-errortype"]
            and error["error_code"]
            and isinstance(error["message"], str)
            and error["message"]
        ), error
        assert len(answer.content) < 2_000, answer.content[:300]
    assert srv.process.poll() is None, srv.log.read_text()[-2000:]
    expected_ok(client, models)
