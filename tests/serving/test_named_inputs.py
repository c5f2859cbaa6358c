"""Records and columns sent to the SageMaker route are matched to the model's features by name:
in any key order for a model whose features are named, and refused (400) for one whose
features have no names (registered from a bare array), where the keys' order was taken as the
features' and `{"b": 2, "a": 1}` silently predicted on swapped features."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build, serving_app
from modelyard.config import load_settings
from tests.serving.asgi_support import lifespan

ROWS = [[1.0, 2.0], [-0.5, 0.25]]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    import xgboost as xgb

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 2))
    y = 10 * x[:, 0] - 3 * x[:, 1]
    frame = pd.DataFrame(x, columns=["a", "b"])
    named = xgb.XGBRegressor(n_estimators=20).fit(frame, y)
    unnamed = xgb.XGBRegressor(n_estimators=20).fit(x, y)
    home: Path = tmp_path_factory.mktemp("named") / "home"
    platform = build(load_settings({}, home=home))
    platform.registry.register("named", named, flavor="xgboost", input_example=frame[:3])
    platform.registry.register("unnamed", unnamed, flavor="xgboost", input_example=x[:3])
    platform.endpoints.create("named-api", {"main": "named:1"})
    platform.endpoints.create("unnamed-api", {"main": "unnamed:1"})
    platform.close()
    return platform


def _post(platform: Platform, requests: list[tuple[str, object]]) -> list[httpx.Response]:
    async def scenario() -> list[httpx.Response]:
        async with lifespan(serving_app(platform.settings)) as client:
            return [
                await client.post(
                    f"/endpoints/{endpoint}/invocations",
                    content=orjson.dumps(body),
                    headers={"content-type": "application/json"},
                )
                for endpoint, body in requests
            ]

    return asyncio.run(scenario())


def test_records_reach_named_features_in_any_key_order(platform: Platform) -> None:
    ordered = [{"a": a, "b": b} for a, b in ROWS]
    swapped = [{"b": b, "a": a} for a, b in ROWS]
    columns = {"inputs": {"b": [r[1] for r in ROWS], "a": [r[0] for r in ROWS]}}
    answers = _post(platform, [("named-api", body) for body in (ROWS, ordered, swapped, columns)])
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    expected = answers[0].json()["predictions"]
    assert [a.json()["predictions"] for a in answers[1:]] == [expected] * 3


def test_records_for_unnamed_features_are_refused_and_rows_answered(platform: Platform) -> None:
    bodies: list[object] = [
        [{"b": 2.0, "a": 1.0}],
        {"instances": [{"a": 1.0, "b": 2.0}]},
        {"inputs": {"a": [1.0], "b": [2.0]}},
    ]
    answers = _post(platform, [("unnamed-api", body) for body in bodies] + [("unnamed-api", ROWS)])
    for refused in answers[:-1]:
        assert refused.status_code == 400, refused.text
        assert refused.headers["x-amzn-errortype"] == "ValidationError"
        message = refused.json()["message"]
        assert "2 features have no names" in message and "arrays" in message, message
    assert answers[-1].status_code == 200
    assert len(answers[-1].json()["predictions"]) == 2
