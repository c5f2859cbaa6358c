"""Ground truth end to end: real fitted models served by a real `modelyard serve` on 127.0.0.1,
capturing every request; labels sent over HTTP (and by the CLI and the Python API) join the
captured predictions, and quality is scored from them.

- A label flip after time T shows as a quality drop in the window after T, not before.
- Unknown and expired inference ids are reported per id, with a 200.
- Labels of the wrong type get a 400 naming the id and the problem, and nothing is stored.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig
from modelyard.domain.feedback import MAX_ITEMS
from modelyard.domain.inference_ids import new_inference_id
from modelyard.domain.quality import QualityStatus
from modelyard.errors import InvalidInput
from modelyard.predictor import Predictor
from tests.e2e.conftest import MODELYARD, Server, clean_env, free_port
from tests.waiting import wait_for

EVERYTHING = CaptureConfig.parse(100)


@dataclass
class Stack:
    platform: Platform
    server: Server
    http: httpx.Client
    x: pd.DataFrame  # breast-cancer test rows
    y: np.ndarray
    clf: Any  # the fitted classifier served at "clf"
    regressor_rows: pd.DataFrame
    home: Path

    def invoke(self, endpoint: str, rows: pd.DataFrame) -> str:
        answer = self.http.post(f"/endpoints/{endpoint}/invocations", json=rows.values.tolist())
        assert answer.status_code == 200, answer.text
        return answer.headers["x-modelyard-inference-id"]

    def feedback(self, endpoint: str, items: list[dict[str, Any]], **kw: Any) -> httpx.Response:
        return self.http.post(f"/endpoints/{endpoint}/feedback", json={"feedback": items}, **kw)

    def wait_captured(self, endpoint: str, ids: list[str], since: datetime) -> None:
        wanted = set(ids)
        wait_for(
            f"the captured rows of {len(ids)} requests to {endpoint}",
            lambda: set(
                self.platform.capture.read(endpoint, since=since, columns=["inference_id"])[
                    "inference_id"
                ]
            ),
            lambda seen: wanted <= seen,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, breast_cancer: Any) -> Iterator[Stack]:
    import xgboost as xgb
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, f1_score

    home = tmp_path_factory.mktemp("feedback") / "home"
    platform = build(load_settings({}, home=home))
    x_train, x_test, y_train, y_test = breast_cancer
    clf = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    predicted = clf.predict(x_test)
    platform.registry.register(
        "cancer",
        clf,
        flavor="sklearn",
        input_example=x_test[:5],
        metrics={
            "validation:accuracy": float(accuracy_score(y_test, predicted)),
            "validation:f1": float(f1_score(y_test, predicted)),
        },
    )
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    regressor = Ridge(alpha=0.1).fit(features[:300], target[:300])
    platform.registry.register(
        "sugar", regressor, flavor="sklearn", input_example=features[:5], metrics={"rmse": 55.0}
    )
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(x_train, label=y_train),
        num_boost_round=5,
    )
    platform.registry.register(
        "tumour",
        booster,
        flavor="xgboost",
        input_example=x_test[:5],
        params={"classes": json.dumps(["benign", "malignant"])},
    )
    for name, model in (("clf", "cancer:1"), ("reg", "sugar:1"), ("boost", "tumour:1")):
        platform.endpoints.create(name, {"main": model}, capture={"main": EVERYTHING})
    platform.endpoints.create("quiet", {"main": "cancer:1"})  # captures nothing

    port = free_port()
    log = home.parent / "server.log"
    env = clean_env(home, MODELYARD_CAPTURE_ROLL_S="0.2", MODELYARD_METRICS="false")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [MODELYARD, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        server.wait_ready()
        with server.client() as http:
            yield Stack(
                platform,
                server,
                http,
                x_test.reset_index(drop=True),
                np.asarray(y_test),
                clf,
                features[300:],
                home,
            )
    finally:
        server.stop()
        platform.close()


def test_a_label_flip_after_t_shows_as_a_quality_drop_after_t(stack: Stack) -> None:
    rows = stack.x[:100]
    truth = [int(v) for v in stack.y[:100]]
    started = datetime.now(UTC)
    before = [stack.invoke("clf", rows[i : i + 25]) for i in range(0, 100, 25)]
    t = datetime.now(UTC)  # every answer above was captured before T, every one below after
    after = [stack.invoke("clf", rows[i : i + 25]) for i in range(0, 100, 25)]
    ended = datetime.now(UTC)
    stack.wait_captured("clf", before + after, started)

    def labels(ids: list[str], flip: bool) -> list[dict[str, Any]]:
        return [
            {
                "inference_id": iid,
                "row": r,
                "label": (1 - truth[25 * k + r]) if flip else truth[25 * k + r],
            }
            for k, iid in enumerate(ids)
            for r in range(25)
        ]

    answer = stack.feedback("clf", labels(before, flip=False) + labels(after, flip=True))
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"] == {"accepted": 200, "unknown": 0, "expired": 0, "ambiguous": 0}

    span = max(t - started, ended - t) + timedelta(seconds=1)
    first, second = stack.platform.feedback.quality(
        "clf", since=t - span, until=t + span, window=span
    )
    assert (first.end, second.start) == (t, t)
    assert first.rows == second.rows == 100
    expected = float(np.mean(stack.clf.predict(rows) == np.asarray(truth)))
    assert first.metrics["accuracy"] == pytest.approx(expected)
    assert first.status is QualityStatus.OK, first
    assert second.metrics["accuracy"] == pytest.approx(1 - expected)
    assert second.status is QualityStatus.DEGRADED, second
    assert set(second.degraded) == {"accuracy", "f1"}
    assert first.metrics["roc_auc"] is None  # the classifier's outputs are labels only


def test_unknown_and_expired_ids_are_reported_per_id(stack: Stack) -> None:
    started = datetime.now(UTC)
    one = stack.invoke("clf", stack.x[:1])
    three = stack.invoke("clf", stack.x[:3])
    uncaptured = stack.invoke("quiet", stack.x[:1])
    stack.wait_captured("clf", [one, three], started)
    old = datetime.now(UTC) - timedelta(days=45)
    expired = f"{int(old.timestamp() * 1000):012x}7{new_inference_id()[13:]}"
    items = [
        {"inference_id": one, "label": 1},
        {"inference_id": new_inference_id(), "label": 1},  # never served
        {"inference_id": expired, "label": 0},
        {"inference_id": "not-an-id-we-made", "label": 0},
        {"inference_id": three, "label": 0},  # three rows: which one?
        {"inference_id": three, "row": 7, "label": 0},
        {"inference_id": three, "row": 2, "label": 0},
    ]
    answer = stack.feedback("clf", items)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "unknown",
        "expired",
        "unknown",
        "unknown",
        "unknown",
        "accepted",
    ]
    messages = [r["message"] for r in body["results"]]
    assert "last 30 days" in messages[2]
    assert "had 3 rows" in messages[4] and "no row 7" in messages[5]
    assert body["counts"] == {"accepted": 2, "unknown": 4, "expired": 1, "ambiguous": 0}
    stored = stack.platform.feedback._store.get("clf", [one, three])
    assert [(t.inference_id, t.row, t.label) for t in stored] == sorted(
        [(one, 0, 1), (three, 2, 0)]
    )
    # A request to an endpoint that captures nothing cannot be labelled.
    quiet = stack.feedback("quiet", [{"inference_id": uncaptured, "label": 1}]).json()
    assert quiet["counts"]["unknown"] == 1
    assert "captures no requests" in quiet["results"][0]["message"]


def test_wrong_label_types_get_a_400_and_store_nothing(stack: Stack) -> None:
    started = datetime.now(UTC)
    reg = stack.invoke("reg", stack.regressor_rows[:2])
    boost = stack.invoke("boost", stack.x[:1])
    stack.wait_captured("reg", [reg], started)
    stack.wait_captured("boost", [boost], started)

    refused = {
        "reg": [
            {"inference_id": reg, "row": 0, "label": 120.5},
            {"inference_id": reg, "row": 1, "label": "high"},
        ],
        "boost": [{"inference_id": boost, "label": "cat"}],
    }
    for endpoint, items in refused.items():
        answer = stack.feedback(endpoint, items)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error_code"] == "invalid_input"
        assert items[-1]["inference_id"] in answer.json()["message"]
    assert "regressor and takes a number" in stack.feedback("reg", refused["reg"]).json()["message"]
    assert (
        "not one of the classes of tumour:1"
        in stack.feedback("boost", refused["boost"]).json()["message"]
    )
    # Nothing of a refused batch is stored, not even its good labels.
    assert stack.platform.feedback._store.get("reg", [reg]) == []

    malformed = {
        "a list label": {"feedback": [{"inference_id": reg, "label": [1, 2]}]},
        "a null label": {"feedback": [{"inference_id": reg, "label": None}]},
        "no label": {"feedback": [{"inference_id": reg}]},
        "a misspelt field": {"feedback": [{"inference_id": reg, "lable": 1}]},
        "no list": {"labels": []},
        "a negative row": {"feedback": [{"inference_id": reg, "row": -1, "label": 1}]},
    }
    for what, body in malformed.items():
        answer = stack.http.post("/endpoints/reg/feedback", json=body)
        assert answer.status_code == 400, (what, answer.text)
    bad_json = stack.http.post(
        "/endpoints/reg/feedback", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["message"]
    as_csv = stack.http.post(
        "/endpoints/reg/feedback", content=b"a,b", headers={"content-type": "text/csv"}
    )
    assert as_csv.status_code == 415
    # Two Content-Type lines that disagree: which one was meant is unknowable.
    twice = stack.http.post(
        "/endpoints/reg/feedback",
        content=orjson.dumps({"feedback": refused["reg"][:1]}),
        headers=[("content-type", "text/csv"), ("content-type", "application/json")],
    )
    assert twice.status_code == 400 and "two different Content-Type" in twice.text, twice.text

    # The good labels go in once the bad one is taken out (a byte order mark first is skipped,
    # as invocations skip it).
    good = stack.http.post(
        "/endpoints/reg/feedback",
        content=b"\xef\xbb\xbf" + orjson.dumps({"feedback": refused["reg"][:1]}),
        headers={"content-type": "application/json"},
    )
    assert good.status_code == 200 and good.json()["counts"]["accepted"] == 1, good.text
    assert (
        stack.feedback("boost", [{"inference_id": boost, "label": "malignant"}]).status_code == 200
    )


def test_unknown_endpoints_wrong_methods_and_oversized_bodies(stack: Stack) -> None:
    item = {"inference_id": new_inference_id(), "label": 1}
    missing = stack.feedback("nowhere", [item])
    assert missing.status_code == 404 and missing.json()["error_code"] == "endpoint_not_found"
    assert stack.http.get("/endpoints/clf/feedback").status_code == 405
    too_many = stack.feedback("clf", [item] * (MAX_ITEMS + 1))
    assert too_many.status_code == 413 and str(MAX_ITEMS) in too_many.json()["message"]
    huge = stack.http.post(
        "/endpoints/clf/feedback",
        content=b'{"feedback": [' + b" " * (7 * 1024 * 1024) + b"]}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413


def test_the_cli_sends_a_labels_file_and_prints_quality(stack: Stack, tmp_path: Path) -> None:
    started = datetime.now(UTC)
    ids = [stack.invoke("clf", stack.x[i : i + 10]) for i in range(0, 40, 10)]
    stack.wait_captured("clf", ids, started)
    truth = [int(v) for v in stack.y[:40]]
    labels = tmp_path / "labels.csv"
    lines = ["inference_id,row,label"] + [
        f"{iid},{r},{truth[10 * k + r]}" for k, iid in enumerate(ids) for r in range(10)
    ]
    lines.append(f"{new_inference_id()},0,1")
    labels.write_text("\n".join(lines) + "\n")
    env = clean_env(stack.home)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MODELYARD, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    sent = cli("endpoints", "feedback", "clf", "--file", str(labels), "--json")
    assert sent.returncode == 0, sent.stderr
    counts = json.loads(sent.stdout)["counts"]
    assert counts == {"accepted": 40, "unknown": 1, "expired": 0, "ambiguous": 0}

    shown = cli("monitor", "quality", "clf", "--window", "1d", "--since", "1d", "--json")
    assert shown.returncode == 0, shown.stderr
    points = json.loads(shown.stdout)
    assert points and all(p["variant"] == "main" and p["model"] == "cancer:1" for p in points)
    assert sum(p["rows"] for p in points) >= 40

    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"inference_id": ids[0], "row": 0, "label": "yes"}) + "\n")
    refused = cli("endpoints", "feedback", "clf", "--file", str(wrong))
    assert refused.returncode == 2 and ids[0] in refused.stderr


def test_the_predictor_sends_labels_for_its_last_prediction(stack: Stack) -> None:
    started = datetime.now(UTC)
    with Predictor("clf", serving_url=stack.server.url, platform=stack.platform) as predictor:
        predictor.predict(stack.x[:3].values.tolist())
        assert predictor.last_inference_id is not None
        stack.wait_captured("clf", [predictor.last_inference_id], started)
        result = predictor.feedback(labels=[int(v) for v in stack.y[:3]])
        assert result.accepted == 3 and result.endpoint == "clf"
        with pytest.raises(InvalidInput, match="not one of the classes"):
            predictor.feedback(labels=["benign"])
        # A missing label in a pandas column is NaN, which JSON has not: the error named the
        # body ('not valid JSON: unexpected character'), not the label.
        missing = pd.Series([1.0, float("nan"), 0.0])
        with pytest.raises(InvalidInput, match=r"feedback item 1 .*finite number, got nan"):
            predictor.feedback(labels=missing)
        with pytest.raises(InvalidInput, match=r"feedback item 0 .*finite number, got inf"):
            predictor.feedback([{"inference_id": predictor.last_inference_id, "label": np.inf}])


def test_a_boto3_inference_id_is_captured_and_labels_its_prediction(
    stack: Stack, boto3_client: Any, tmp_path: Path
) -> None:
    """SageMaker Model Monitor users label ground truth by the InferenceId they sent: boto3's
    invoke_endpoint(InferenceId=...) at 100 % capture, then labels by that id over HTTP, the
    CLI's file and the Python API, joined as labels by our id are; a reused id labels
    nothing; a request sent without one captures no value."""
    runtime = boto3_client(stack.server.url)
    started = datetime.now(UTC)
    tag = new_inference_id()[-8:]
    rows = stack.regressor_rows[:6].reset_index(drop=True)

    def invoke(i: int, inference_id: str | None) -> tuple[str, float]:
        extra = {} if inference_id is None else {"InferenceId": inference_id}
        answer = runtime.invoke_endpoint(
            EndpointName="reg",
            Body=orjson.dumps(rows[i : i + 1].values.tolist()),
            ContentType="application/json",
            **extra,
        )
        ours = answer["ResponseMetadata"]["HTTPHeaders"]["x-modelyard-inference-id"]
        (predicted,) = orjson.loads(answer["Body"].read())["predictions"]
        return ours, float(predicted)

    named = [f"http-{tag}", f"cli-{tag}", f"py-{tag}"]
    sent = [invoke(i, caller) for i, caller in enumerate(named)]
    reused = [invoke(3, f"reused-{tag}"), invoke(4, f"reused-{tag}")]
    plain, _ = invoke(5, None)
    ours = [o for o, _ in sent + reused] + [plain]
    stack.wait_captured("reg", ours, started)
    captured = stack.platform.capture.read(
        "reg", since=started, columns=["inference_id", "caller_inference_id"]
    )
    by_id = dict(zip(captured["inference_id"], captured["caller_inference_id"], strict=True))
    assert [by_id[o] for o, _ in sent] == named
    assert pd.isna(by_id[plain])  # sent without one: no value

    labels = [p + 10.0 for _, p in sent]  # each prediction 10 off
    http = stack.feedback(
        "reg",
        [
            {"inference_id": named[0], "label": labels[0]},
            {"inference_id": f"reused-{tag}", "label": 1.0},
            {"inference_id": f"never-sent-{tag}", "label": 1.0},
        ],
    ).json()
    assert [r["status"] for r in http["results"]] == ["accepted", "ambiguous", "unknown"]
    assert http["counts"] == {"accepted": 1, "unknown": 1, "expired": 0, "ambiguous": 1}
    assert "2 captured requests" in http["results"][1]["message"]

    file = tmp_path / "labels.csv"
    file.write_text(f"inference_id,label\n{named[1]},{labels[1]}\n")
    cli = subprocess.run(
        [MODELYARD, "endpoints", "feedback", "reg", "--file", str(file), "--json"],
        env=clean_env(stack.home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["counts"]["accepted"] == 1

    with Predictor("reg", serving_url=stack.server.url, platform=stack.platform) as predictor:
        result = predictor.feedback([{"inference_id": named[2], "label": labels[2]}])
    assert result.accepted == 1

    stored = stack.platform.feedback._store.get("reg", ours)
    assert sorted(t.inference_id for t in stored) == sorted(o for o, _ in sent)  # under ours
    (point,) = stack.platform.feedback.quality(
        "reg", since=started, until=datetime.now(UTC), window="1d"
    )
    assert point.rows == 3
    assert point.metrics["rmse"] == pytest.approx(10.0)
