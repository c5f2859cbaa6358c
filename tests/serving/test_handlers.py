"""A version's ``input_fn`` in the serving app bootstrap builds: what it returns is what the
model, batching, capture and the metrics take, so what they cannot take is refused there, in the
protocol's error shape, naming the problem."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest

from modelyard.bootstrap import build, serving_app
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig, Trust
from tests.serving.asgi_support import lifespan

HANDLER = """
from sklearn.feature_extraction.text import HashingVectorizer

_VECTORIZER = HashingVectorizer(n_features=64, alternate_sign=False)


def input_fn(body, content_type):
    reviews = [line for line in body.decode("utf-8").splitlines() if line.strip()]
    return _VECTORIZER.transform(reviews){dense}
"""
TEXT = "a wonderful film\nboring and dull\n"


def test_an_input_fn_that_returns_a_sparse_matrix_is_a_model_error_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A vectorizer's ``transform`` returns a scipy sparse matrix, whose length is ambiguous:
    the batcher's ``len(rows)`` used to raise outside every error translation, so the caller
    got the server's bare 500 (no SageMaker error, no inference id) and the traceback was the
    only trace. Now it is the endpoint's ModelError (424) saying what to return instead."""
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression

    platform = build(load_settings({}, home=tmp_path / "home"))
    texts = ["a wonderful film", "boring and dull", "moving", "a waste of time"] * 5
    vectors = HashingVectorizer(n_features=64, alternate_sign=False).transform(texts).toarray()
    model = LogisticRegression().fit(vectors, [1, 0, 1, 0] * 5)
    for name, dense in (("sparse", ""), ("dense", ".toarray()")):
        handler = tmp_path / f"{name}_handler.py"
        handler.write_text(HANDLER.replace("{dense}", dense))
        platform.registry.register(
            name, model, flavor="sklearn", input_example=np.zeros((2, 64)), handler=handler,
            trust=Trust(user_code=True),
        )  # fmt: skip
        platform.endpoints.create(
            name, {"main": f"{name}:1"}, capture={"main": CaptureConfig.parse(100)}
        )
    platform.close()

    async def scenario() -> None:
        async with lifespan(serving_app(platform.settings)) as client:
            text = {"content-type": "text/plain"}
            answer = await client.post("/endpoints/sparse/invocations", content=TEXT, headers=text)
            assert answer.status_code == 424, answer.text
            assert answer.headers["x-amzn-errortype"] == "ModelError"
            body = answer.json()
            assert body["inference_id"] == answer.headers["x-modelyard-inference-id"]
            assert "csr_matrix" in body["OriginalMessage"]
            assert ".toarray()" in body["OriginalMessage"]
            fine = await client.post("/endpoints/dense/invocations", content=TEXT, headers=text)
            assert fine.status_code == 200 and fine.json()["predictions"] == [1, 0], fine.text

    with caplog.at_level(logging.ERROR, logger="modelyard.serving"):
        asyncio.run(scenario())
    assert any("input_fn returned csr_matrix" in r.getMessage() for r in caplog.records)


EXITING_HANDLER = """
import sys

import numpy as np


def input_fn(body, content_type):
    if body == b"exit":
        sys.exit("usage: input_fn [-h] rows")
    return np.array([[float(v) for v in body.split(b",")]])


def output_fn(predictions, accept):
    if predictions[0] < 0.5:
        sys.exit(2)
    return str(round(float(predictions[0]), 6)).encode(), "text/plain"
"""


def test_a_handler_that_exits_is_a_model_error_and_the_server_goes_on(tmp_path: Path) -> None:
    """A handler's ``sys.exit`` (argparse's, on an argument it refuses) used to leave the
    handler's thread as a ``SystemExit``, which no error translation caught: asyncio re-raised
    it from the request's task and the server stopped. Now it is the endpoint's ModelError."""
    from sklearn.linear_model import LinearRegression

    platform = build(load_settings({}, home=tmp_path / "home"))
    model = LinearRegression().fit(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]), [0, 2, 2])
    handler = tmp_path / "handler.py"
    handler.write_text(EXITING_HANDLER)
    platform.registry.register(
        "m", model, flavor="sklearn", input_example=np.ones((1, 2)), handler=handler,
        trust=Trust(user_code=True),
    )  # fmt: skip
    platform.endpoints.create("api", {"main": "m:1"})
    platform.close()

    async def scenario() -> None:
        async with lifespan(serving_app(platform.settings)) as client:
            for body, hook in ((b"exit", "input_fn"), (b"0,0", "output_fn")):
                answer = await client.post("/endpoints/api/invocations", content=body)
                assert answer.status_code == 424, answer.text
                assert answer.headers["x-amzn-errortype"] == "ModelError"
                assert f"{hook} raised SystemExit" in answer.json()["OriginalMessage"]
                fine = await client.post("/endpoints/api/invocations", content=b"1,1")
                assert fine.status_code == 200, fine.text
                assert fine.text == "2.0", fine.text

    asyncio.run(scenario())
