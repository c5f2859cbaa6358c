"""A scikit-learn Pipeline that encodes categories, served through the app: the SageMaker route
takes its rows as JSON or CSV (they were refused: "cannot read 'gold' as a number"), answers as
the pipeline does on the same frame, and as V2 does with BYTES tensors; capture keeps the text
and hashes a redacted text field."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build, serving_app
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig
from tests.serving.asgi_support import lifespan

INVOKE = "/endpoints/api/invocations"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Platform, Any, pd.DataFrame]:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 300).astype(float),
            "plan": rng.choice(["gold", "basic", "pro"], 300),
            "region": rng.choice(["north", "south", "east"], 300),
        }
    )
    labels = ((frame["plan"] == "gold") | (frame["age"] > 60)).astype(int)
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]), remainder="passthrough"
    )
    pipeline = make_pipeline(encode, LogisticRegression(max_iter=500)).fit(frame, labels)
    platform = build(load_settings({}, home=tmp_path_factory.mktemp("text") / "home"))
    platform.registry.register("churn", pipeline, flavor="sklearn", input_example=frame[:5])
    capture = CaptureConfig.parse(100, ["region"])
    platform.endpoints.create("api", {"main": "churn:1"}, capture={"main": capture})
    platform.close()
    return platform, pipeline, frame


def _post(platform: Platform, requests: list[tuple[str, bytes, str]]) -> list[httpx.Response]:
    async def scenario() -> list[httpx.Response]:
        async with lifespan(serving_app(platform.settings)) as client:
            return [
                await client.post(path, content=body, headers={"content-type": media})
                for path, body, media in requests
            ]

    return asyncio.run(scenario())


def test_json_and_csv_rows_with_text_are_answered_as_the_pipeline_answers(
    served: tuple[Platform, Any, pd.DataFrame],
) -> None:
    platform, pipeline, frame = served
    rows = frame.iloc[:4]
    expected = pipeline.predict(rows).tolist()
    records = rows.to_json(orient="records").encode()
    csv = rows.to_csv(header=False, index=False).encode()
    v2 = {
        "inputs": [
            {"name": "age", "datatype": "FP64", "shape": [4], "data": rows["age"].tolist()},
            {"name": "plan", "datatype": "BYTES", "shape": [4], "data": rows["plan"].tolist()},
            {"name": "region", "datatype": "BYTES", "shape": [4], "data": rows["region"].tolist()},
        ]
    }
    answers = _post(
        platform,
        [
            (INVOKE, records, "application/json"),
            (INVOKE, csv, "text/csv"),
            (INVOKE, b'{"instances": [[70, "basic", "north"]]}', "application/json"),
            ("/v2/models/api/infer", orjson.dumps(v2), "application/json"),
            (INVOKE, b'[[70, 2.5, "north"]]', "application/json"),
        ],
    )
    for answer in answers[:3]:
        assert answer.status_code == 200, answer.text
    assert answers[0].json()["predictions"] == expected
    assert answers[1].json()["predictions"] == expected
    alone = pd.DataFrame({"age": [70.0], "plan": ["basic"], "region": ["north"]})
    assert answers[2].json()["predictions"] == pipeline.predict(alone).tolist()
    assert answers[3].status_code == 200, answers[3].text
    assert answers[3].json()["outputs"][0]["data"] == expected
    assert answers[4].status_code == 400, answers[4].text
    assert "row 1, column 2 (feature 'plan'): expected text or null" in answers[4].text

    captured = build(platform.settings).capture.read(
        "api", since=datetime.now(UTC) - timedelta(hours=1)
    )
    mine = captured[captured["protocol"] == "sagemaker"]
    assert sorted(mine["input.plan"].tolist()) == sorted([*rows["plan"].tolist() * 2, "basic"])
    regions = set(mine["input.region"])
    assert regions and not regions & set(frame["region"]), "the redacted region is hashed"


def test_batch_transform_reads_text_rows_from_csv_and_json_lines(
    served: tuple[Platform, Any, pd.DataFrame], tmp_path: Path
) -> None:
    """Both CSV paths (the columnar one refuses a model taking text: codes such as 1, 2 are
    text to it) and JSON Lines, whose records are predicted together as one table."""
    from modelyard.batch import ModelSource
    from modelyard.batch.coordinator import run_job
    from modelyard.domain import ModelSpec
    from modelyard.domain.batch import BatchFormat, TransformRequest

    platform, pipeline, frame = served
    rows = frame.iloc[10:16]
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "rows.csv").write_text(rows.to_csv(header=False, index=False))
    (inputs / "rows.jsonl").write_text(rows.to_json(orient="records", lines=True))
    expected = pipeline.predict(rows).tolist()
    current = build(platform.settings)
    try:
        spec = ModelSpec.from_version(current.registry.get_version("churn:1"))
        source = ModelSource(current.registry.artifacts, spec, str(tmp_path / "scratch"))
        for name, media in (("rows.csv", BatchFormat.CSV), ("rows.jsonl", BatchFormat.JSONLINES)):
            out = tmp_path / f"out-{name}"
            request = TransformRequest(
                "churn:1", str(inputs / name), str(out), content_type=media, workers=1
            )
            outcome = run_job(request, source, job=f"text-{name}")
            assert outcome.counts.rows_out == len(rows), name
            answers = [orjson.loads(line) for line in (out / f"{name}.out").read_bytes().split()]
            # A CSV line's answer is its prediction; a JSON record's, {"predictions": [it]}.
            flat = [a["predictions"][0] if isinstance(a, dict) else a for a in answers]
            assert flat == expected, name
        # Text that reads as numbers (codes): the columnar CSV path would take them as floats.
        (inputs / "codes.csv").write_text("70,1,2\n30,3,4\n")
        out = tmp_path / "out-codes"
        request = TransformRequest(
            "churn:1", str(inputs / "codes.csv"), str(out), content_type=BatchFormat.CSV
        )
        run_job(request, source, job="text-codes")
        codes = pd.DataFrame({"age": [70.0, 30.0], "plan": ["1", "3"], "region": ["2", "4"]})
        answers = [orjson.loads(line) for line in (out / "codes.csv.out").read_bytes().split()]
        assert answers == pipeline.predict(codes).tolist()
    finally:
        current.close()


def test_a_pipeline_registered_without_an_example_serves_its_text_rows(
    served: tuple[Platform, Any, pd.DataFrame], tmp_path: Path
) -> None:
    """Registered bare, the pipeline's signature names its text columns (its encoders tell);
    its endpoint was refused at creation: the warm-up sent a row of zeros, which an encoder
    fitted on text refuses. Without an example there is no row such a model surely takes, so
    it is not warmed, and the first requests are answered as the pipeline answers."""
    _, pipeline, frame = served
    platform = build(load_settings({}, home=tmp_path / "home"))
    try:
        platform.registry.register("bare", pipeline, flavor="sklearn")
        platform.endpoints.create("api", {"main": "bare:1"})
    finally:
        platform.close()
    rows = frame.iloc[:3]
    (answer,) = _post(
        platform, [(INVOKE, rows.to_json(orient="records").encode(), "application/json")]
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pipeline.predict(rows).tolist()
