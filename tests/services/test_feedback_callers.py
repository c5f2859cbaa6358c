"""Feedback by the id a caller sent with its request (SageMaker ``InferenceId``), on real
captured rows: found in the ``caller_inference_id`` column within the label window and stored
under our id of the request, so it is one label with one sent by our id; an id several
requests carry is ambiguous and stores nothing; files written without the column (before it
existed, or of requests sent without an id) read as holding none.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelyard.bootstrap import Platform, serving_app
from modelyard.domain.feedback import FeedbackStatus
from modelyard.domain.quality import QualityConfig
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.storage.capture_files import CaptureFolder
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.feedback_store import SqlFeedbackStore
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import make_platform, serving

ONE_ROW = "0.5,0.5,1.0\n"
TWO_ROWS = "0.5,0.5,1.0\n-2.0,-1.0,3.0\n"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    made = make_platform(tmp_path_factory.mktemp("feedback-callers") / "home")
    yield made
    made.close()


@pytest.fixture(scope="module")
def store(platform: Platform) -> Iterator[SqlFeedbackStore]:
    engine = make_engine(platform.settings.resolved_db_url)
    yield SqlFeedbackStore(engine)
    engine.dispose()


def send(platform: Platform, requests: list[tuple[str | None, str]]) -> list[tuple[str, list]]:
    """POST each ``(caller's id or None, CSV body)`` to ``api`` (capturing all); our id and
    the predictions of each, once their rows are written."""
    folder = CaptureFolder(platform.settings.resolved_capture_url)

    async def scenario() -> list[tuple[str, list]]:
        out = []
        async with serving(platform.settings, CaptureWriter(folder)) as client:
            for caller, body in requests:
                headers = {"content-type": "text/csv", "accept": "application/json"}
                if caller is not None:
                    headers["x-amzn-sagemaker-inference-id"] = caller
                answer: httpx.Response = await client.post(
                    "/endpoints/api/invocations", content=body, headers=headers
                )
                assert answer.status_code == 200, answer.text
                ours = answer.headers["x-modelyard-inference-id"]
                out.append((ours, answer.json()["predictions"]))
        return out

    return asyncio.run(scenario())  # the writer's close wrote every row


def test_a_callers_id_labels_its_prediction_under_our_id(
    platform: Platform, store: SqlFeedbackStore
) -> None:
    started = datetime.now(UTC)
    caller = f"order-{uuid.uuid4()}"  # as str(uuid4()) writes it: dashed, kept as sent
    [(ours, predicted)] = send(platform, [(caller, TWO_ROWS)])
    items = [{"inference_id": caller, "row": r, "label": 1 - p} for r, p in enumerate(predicted)]
    result = platform.feedback.record("api", items)
    assert [o.status for o in result.outcomes] == [FeedbackStatus.ACCEPTED] * 2
    assert [o.inference_id for o in result.outcomes] == [caller] * 2  # named as sent
    stored = store.get("api", [ours])
    wrong = [(r, 1 - p) for r, p in enumerate(predicted)]
    assert sorted((t.row, t.label) for t in stored) == wrong
    assert store.get("api", [caller]) == []
    # The same prediction named by our id: the label replaces the caller's, one label a row.
    fixed = [{"inference_id": ours, "row": r, "label": p} for r, p in enumerate(predicted)]
    assert platform.feedback.record("api", fixed).accepted == 2
    (point,) = platform.feedback.quality(
        "api", window=datetime.now(UTC) - started, config=QualityConfig(min_rows=1)
    )
    assert point.rows == 2 and point.metrics["accuracy"] == 1.0


def test_a_reused_callers_id_is_ambiguous_and_stores_nothing(
    platform: Platform, store: SqlFeedbackStore
) -> None:
    reused, alone = f"reused-{uuid.uuid4().hex[:8]}", f"alone-{uuid.uuid4().hex[:8]}"
    answers = send(platform, [(reused, ONE_ROW), (alone, ONE_ROW), (reused, ONE_ROW)])
    result = platform.feedback.record(
        "api", [{"inference_id": reused, "label": 1}, {"inference_id": alone, "label": 0}]
    )
    ambiguous, accepted = result.outcomes
    assert ambiguous.status is FeedbackStatus.AMBIGUOUS
    assert "2 captured requests" in (ambiguous.message or "")
    assert accepted.status is FeedbackStatus.ACCEPTED, accepted.message
    assert result.to_dict()["counts"] == {
        "accepted": 1,
        "unknown": 0,
        "expired": 0,
        "ambiguous": 1,
    }
    assert store.get("api", [answers[0][0], answers[2][0]]) == []
    assert len(store.get("api", [answers[1][0]])) == 1


def test_an_unknown_callers_id_is_unknown_and_an_upper_case_one_is_matched_as_sent(
    platform: Platform,
) -> None:
    upper = uuid.uuid4().hex.upper()  # 32 hex digits, not ours: not lower-cased
    send(platform, [(upper, ONE_ROW)])
    result = platform.feedback.record(
        "api",
        [
            {"inference_id": upper, "label": 1},
            {"inference_id": upper.lower(), "label": 1},  # another id to the caller
            {"inference_id": "never-sent", "label": 1},
        ],
    )
    found, lower, never = result.outcomes
    assert found.status is FeedbackStatus.ACCEPTED, found.message
    assert found.inference_id == upper
    assert lower.status is never.status is FeedbackStatus.UNKNOWN
    assert "InferenceId" in (never.message or "") and "30 days" in (never.message or "")


def test_files_without_the_column_read_as_no_callers_ids(
    platform: Platform, store: SqlFeedbackStore
) -> None:
    started = datetime.now(UTC)
    [(ours, [predicted])] = send(platform, [(None, ONE_ROW)])  # a file without the column
    caller = f"after-{uuid.uuid4().hex[:8]}"
    [(theirs, _)] = send(platform, [(caller, ONE_ROW)])
    root = platform.settings.home / "artifacts" / "capture" / "api"
    names = [pq.read_schema(f).names for f in root.rglob("*.parquet")]
    assert any("caller_inference_id" not in n for n in names)
    result = platform.feedback.record(
        "api",
        [{"inference_id": ours, "label": int(predicted)}, {"inference_id": caller, "label": 1}],
    )
    assert [o.status for o in result.outcomes] == [FeedbackStatus.ACCEPTED] * 2
    assert {t.inference_id for t in store.get("api", [ours, theirs])} == {ours, theirs}
    exported = platform.capture.read("api", since=started - timedelta(minutes=1))
    by_id = dict(zip(exported["inference_id"], exported["caller_inference_id"], strict=True))
    assert by_id[theirs] == caller
    assert pd.isna(by_id[ours])


def test_a_callers_id_on_a_request_copied_to_a_shadow_labels_the_production_answer(
    platform: Platform, store: SqlFeedbackStore
) -> None:
    """The shadow's copy is captured with the request's ids, ours and the caller's: one
    request, not two (not ambiguous), and the label is production's."""
    from modelyard.domain import CaptureConfig

    every = CaptureConfig.parse(100)
    platform.endpoints.create(
        "mirrored",
        {"main": "churn:1", "shadow": "churn:1"},
        capture={"main": every, "shadow": every},
        shadows={"shadow": 100.0},
    )
    caller = f"mirrored-{uuid.uuid4().hex[:8]}"

    async def scenario() -> str:
        # The app bootstrap builds: the shadow fan-out, and at shutdown the queued copies
        # reach capture before its writer writes.
        async with lifespan(serving_app(platform.settings)) as client:
            answer = await client.post(
                "/endpoints/mirrored/invocations",
                content=ONE_ROW,
                headers={"content-type": "text/csv", "x-amzn-sagemaker-inference-id": caller},
            )
            assert answer.status_code == 200, answer.text
            return answer.headers["x-modelyard-inference-id"]

    ours = asyncio.run(scenario())
    (outcome,) = platform.feedback.record(
        "mirrored", [{"inference_id": caller, "label": 1}]
    ).outcomes
    assert outcome.status is FeedbackStatus.ACCEPTED, outcome.message
    (stored,) = store.get("mirrored", [ours])
    assert stored.variant == "main"
    captured = platform.capture.read("mirrored", since=datetime.now(UTC) - timedelta(hours=1))
    assert sorted(captured["variant"]) == ["main", "shadow"]
    assert set(captured["caller_inference_id"]) == {caller}
