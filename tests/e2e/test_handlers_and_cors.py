"""Pre/post-processing packaged with a model (raw review text in, a label out) and the CORS
allow-list, through a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain import Trust
from modelyard.errors import InvalidModelFile, UnsafeModelFormat

HANDLER = """
import json

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

_VECTORIZER = HashingVectorizer(n_features=256, alternate_sign=False, norm="l2")


def input_fn(body, content_type):
    if not content_type.startswith("text/plain"):
        raise ValueError(f"send reviews as text/plain, one per line, not {content_type}")
    reviews = [line for line in body.decode("utf-8").splitlines() if line.strip()]
    if not reviews:
        raise ValueError("no review in the request")
    return _VECTORIZER.transform(reviews).toarray()


def output_fn(predictions, accept):
    labels = ["positive" if p == 1 else "negative" for p in np.asarray(predictions).tolist()]
    return json.dumps({"labels": labels}), "application/json"
"""

GOOD = ["great", "wonderful", "loved", "brilliant", "moving", "superb"]
BAD = ["awful", "boring", "hated", "terrible", "dull", "waste"]


@pytest.fixture
def sentiment(platform: Platform, tmp_path: Path) -> Path:
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    texts, labels = [], []
    for _ in range(400):
        positive = bool(rng.integers(2))
        words = rng.choice(GOOD if positive else BAD, size=3)
        texts.append(f"the film was {' and '.join(words)}")
        labels.append(int(positive))
    vectorizer = HashingVectorizer(n_features=256, alternate_sign=False, norm="l2")
    model = LogisticRegression(max_iter=1000).fit(vectorizer.transform(texts).toarray(), labels)
    handler = tmp_path / "sentiment_handler.py"
    handler.write_text(HANDLER)
    platform.registry.register(
        "sentiment",
        model,
        flavor="sklearn",
        input_example=np.zeros((2, 256)),
        handler=handler,
        trust=Trust(user_code=True),
    )
    platform.endpoints.create("reviews", {"main": "sentiment:1"})
    return handler


def test_raw_text_in_label_out(sentiment: Path, serve: Any) -> None:
    server = serve()
    with server.client() as http:
        res = http.post(
            "/endpoints/reviews/invocations",
            content="a wonderful, moving and brilliant film\nboring, dull, a waste of time\n",
            headers={"content-type": "text/plain; charset=utf-8"},
        )
        assert res.status_code == 200, res.text
        assert res.json() == {"labels": ["positive", "negative"]}
        assert res.headers["x-modelyard-model-version"] == "sentiment:1"
        refused = http.post(
            "/endpoints/reviews/invocations",
            json=[1, 2],
            headers={"content-type": "application/json"},
        )
        assert refused.status_code == 400
        assert "text/plain" in refused.json()["message"]


def test_handler_needs_trust_and_hooks(platform: Platform, sentiment: Path, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    before = platform.registry.list_versions("sentiment")
    with pytest.raises(UnsafeModelFormat, match="trust the model's code"):
        platform.registry.register("sentiment", model, flavor="sklearn", handler=sentiment)
    empty = tmp_path / "empty_handler.py"
    empty.write_text("x = 1\n")
    with pytest.raises(InvalidModelFile, match="neither input_fn"):
        platform.registry.register(
            "sentiment", model, flavor="sklearn", handler=empty, trust=Trust(user_code=True)
        )
    assert platform.registry.list_versions("sentiment") == before


def test_cors_allow_list(platform: Platform, serve: Any) -> None:
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    server = serve(MODELYARD_CORS_ORIGINS="https://app.example.com")
    url = "/endpoints/churn-api/invocations"
    row = [0.0] * 30
    with server.client() as http:
        allowed = http.post(url, json=row, headers={"origin": "https://app.example.com"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "x-modelyard-variant" in allowed.headers["access-control-expose-headers"]
        other = http.post(url, json=row, headers={"origin": "https://evil.example"})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
        preflight = http.options(
            url,
            headers={"origin": "https://app.example.com", "access-control-request-method": "POST"},
        )
        assert preflight.status_code == 204
        assert "POST" in preflight.headers["access-control-allow-methods"]
        refused = http.options(url, headers={"origin": "https://evil.example"})
        assert refused.status_code == 403


# What a browser's AWS SDK for JavaScript (v3) asks a preflight for before InvokeEndpoint: its
# own headers, SigV4's and the runtime's optional fields (CustomAttributes, InferenceId).
SDK_HEADERS = (
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "authorization",
    "content-type",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-user-agent",
    "x-amzn-sagemaker-custom-attributes",
    "x-amzn-sagemaker-inference-id",
)


def test_cors_lets_a_browser_sagemaker_client_call_and_read_its_errors(
    platform: Platform, serve: Any
) -> None:
    """A preflight allowed only the headers the routes read, so a browser refused every call of
    the AWS SDK for JavaScript (it signs with ``authorization`` and ``x-amz-date``), and with
    ``x-amzn-errortype`` not exposed, the SDK could not tell which error a refusal was."""
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    server = serve(MODELYARD_CORS_ORIGINS="https://app.example.com")
    origin = {"origin": "https://app.example.com"}
    with server.client() as http:
        preflight = http.options(
            "/endpoints/churn-api/invocations",
            headers={
                **origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": ",".join(SDK_HEADERS),
            },
        )
        assert preflight.status_code == 204
        allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert set(SDK_HEADERS) <= allowed, set(SDK_HEADERS) - allowed
        refused = http.post(
            "/endpoints/nowhere/invocations",
            content=b"0",
            headers={**origin, "content-type": "text/csv", "x-amz-date": "20261207T000000Z"},
        )
        assert refused.status_code == 404
        assert refused.headers["x-amzn-errortype"] == "ValidationError"
        exposed = refused.headers["access-control-expose-headers"].split(",")
        assert "x-amzn-errortype" in {h.strip() for h in exposed}
