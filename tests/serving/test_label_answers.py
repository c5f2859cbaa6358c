"""A classifier answering text labels, through the SageMaker route in every response type the
SageMaker SDK's deserializers ask for: fitted on a pandas column of strings, its labels are
Python objects, which ``Accept: application/x-npy`` (NumpyDeserializer's) answered with a 424
ModelError, as if the model had failed."""

from __future__ import annotations

import asyncio
import io

import httpx
import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build, serving_app
from modelyard.config import load_settings
from tests.serving.asgi_support import lifespan

INVOKE = "/endpoints/labels/invocations"
ROWS = b"0.5,-1.0,2.0\n-3.0,0.25,1.0\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Platform, list[str]]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    labels = pd.Series(np.where(frame["a"] > 0, "yes", "no"), dtype=object)
    model = LogisticRegression().fit(frame, labels)
    rows = pd.DataFrame([[0.5, -1.0, 2.0], [-3.0, 0.25, 1.0]], columns=frame.columns)
    expected = model.predict(rows)
    assert expected.dtype == object  # what the route must write as .npy
    home = tmp_path_factory.mktemp("labels") / "home"
    platform = build(load_settings({}, home=home))
    platform.registry.register("labels", model, flavor="sklearn", input_example=frame[:3])
    platform.endpoints.create("labels", {"main": "labels:1"})
    platform.close()
    return platform, expected.tolist()


def _post(platform: Platform, accepts: list[str]) -> list[httpx.Response]:
    async def scenario() -> list[httpx.Response]:
        async with lifespan(serving_app(platform.settings)) as client:
            return [
                await client.post(
                    INVOKE, content=ROWS, headers={"content-type": "text/csv", "accept": accept}
                )
                for accept in accepts
            ]

    return asyncio.run(scenario())


def test_text_labels_are_answered_as_npy_json_and_csv(served: tuple[Platform, list[str]]) -> None:
    platform, expected = served
    accepts = ["application/x-npy", "application/x-npy, application/json"]
    npy, both, json, csv = _post(platform, [*accepts, "application/json", "text/csv"])
    for answer in (npy, both):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/x-npy"
        back = np.load(io.BytesIO(answer.content), allow_pickle=False)
        assert back.dtype.kind == "U"
        assert back.tolist() == expected
    assert json.json() == {"predictions": expected}
    assert csv.text.splitlines() == expected
