"""FeedbackService on real captured rows: the serving app bootstrap builds (capture on, the
feedback route wired) runs in this process, its captured rows written at shutdown.

- A label sent before its prediction's row is readable is unknown, saying to send it later;
  once the row is written the same label is accepted.
- A label replaces the earlier one for the same id and row; labels of the wrong kind refuse
  the whole batch; malformed items name the item.
- quality(): the current variant gets a point in every window (INSUFFICIENT_DATA without
  labels); a variant the endpoint never had is refused; bad windows are refused.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build, serving_app
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig
from modelyard.domain.feedback import FeedbackItem, FeedbackStatus
from modelyard.domain.quality import QualityConfig, QualityStatus
from modelyard.errors import InvalidInput, PayloadTooLarge, VariantNotFound
from tests.serving.asgi_support import lifespan

FEATURES = ["a", "b"]
MAX = datetime.max.replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """``score:1`` (a logistic regression predicting 0/1) at endpoint ``api``, capturing all,
    with a validation accuracy of 0.9."""
    from sklearn.linear_model import LogisticRegression

    home = tmp_path_factory.mktemp("feedback-service") / "home"
    # A roll of an hour: captured rows are written only when the app shuts down.
    made = build(load_settings({}, home=home, capture_roll_s=3600, metrics=False))
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=FEATURES)
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    made.registry.register(
        "score", model, flavor="sklearn", input_example=frame[:3], metrics={"accuracy": 0.9}
    )
    made.endpoints.create("api", {"main": "score:1"}, capture={"main": CaptureConfig.parse(100)})
    return made


async def predict(client: httpx.AsyncClient, rows: list[list[float]]) -> tuple[str, list[int]]:
    answer = await client.post("/endpoints/api/invocations", json=rows)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-modelyard-inference-id"], answer.json()["predictions"]


def test_a_label_before_its_row_is_written_is_unknown_then_accepted(platform: Platform) -> None:
    async def scenario() -> tuple[str, dict[str, Any]]:
        async with lifespan(serving_app(platform.settings)) as client:
            inference_id, _ = await predict(client, [[1.0, 0.0]])
            early = await client.post(
                "/endpoints/api/feedback",
                json={"feedback": [{"inference_id": inference_id, "label": 1}]},
            )
            assert early.status_code == 200, early.text
            return inference_id, early.json()

    inference_id, early = asyncio.run(scenario())  # the shutdown wrote the captured row
    assert early["results"][0]["status"] == "unknown"
    assert "send it again later" in early["results"][0]["message"]
    later = platform.feedback.record("api", [FeedbackItem(inference_id, 1)])
    assert [o.status for o in later.outcomes] == [FeedbackStatus.ACCEPTED]


def test_labels_replace_earlier_ones_and_quality_reads_them(platform: Platform) -> None:
    rows = [[1.0, 0.0], [-1.0, 0.0], [2.0, 1.0]]

    async def scenario() -> list[tuple[str, list[int]]]:
        async with lifespan(serving_app(platform.settings)) as client:
            return [await predict(client, rows) for _ in range(20)]

    started = datetime.now(UTC)
    answers = asyncio.run(scenario())
    wrong = [
        {"inference_id": iid, "row": r, "label": 1 - p}
        for iid, predicted in answers
        for r, p in enumerate(predicted)
    ]
    assert platform.feedback.record("api", wrong).accepted == 60
    bad = platform.feedback.quality("api", window=datetime.now(UTC) - started)
    assert [p.status for p in bad] == [QualityStatus.DEGRADED]
    assert bad[0].metrics["accuracy"] == 0.0 and bad[0].rows == 60
    # The truth arrives: each label replaces the wrong one for its id and row.
    right = [{**item, "label": 1 - item["label"]} for item in wrong]
    assert platform.feedback.record("api", right).accepted == 60
    (good,) = platform.feedback.quality("api", window=datetime.now(UTC) - started)
    assert good.status is QualityStatus.OK and good.metrics["accuracy"] == 1.0
    assert good.rows == 60

    # Strings and non-class numbers refuse the whole batch, naming each id.
    iid = answers[0][0]
    with pytest.raises(InvalidInput, match=f"{iid}.*not one of the classes") as refused:
        platform.feedback.record(
            "api",
            [
                {"inference_id": answers[1][0], "row": 0, "label": 0},
                {"inference_id": iid, "row": 0, "label": "yes"},
                {"inference_id": iid, "row": 1, "label": 0.5},
            ],
        )
    # Each refusal names its row, row 0 included.
    assert f"inference id {iid} row 0: " in str(refused.value)
    assert f"inference id {iid} row 1: " in str(refused.value)
    (after,) = platform.feedback.quality("api", window=datetime.now(UTC) - started)
    assert after.metrics["accuracy"] == 1.0  # the good label of the batch was not stored


def test_a_damaged_captured_file_does_not_refuse_the_labels_of_the_files_beside_it(
    platform: Platform,
) -> None:
    """One damaged file in an hour folder made every feedback request naming a prediction of
    that hour fail with StorageUnavailable (503, 'retry later'), for good: a retry read the
    same file."""
    from modelyard.domain.capture import partition
    from modelyard.domain.inference_ids import issued_at, new_inference_id
    from modelyard.storage.capture_files import CaptureFolder

    async def scenario() -> str:
        async with lifespan(serving_app(platform.settings)) as client:
            inference_id, _ = await predict(client, [[1.0, 0.0]])
            return inference_id

    inference_id = asyncio.run(scenario())  # the shutdown wrote the captured row
    made = issued_at(inference_id)
    assert made is not None
    damaged = f"{partition('api', made)}/part-damaged.parquet"
    folder = CaptureFolder(platform.settings.resolved_capture_url)
    folder.write(damaged, b"not parquet")
    try:
        missing = new_inference_id()  # a real id of now, whose row no file holds
        # An id of three hours before: the damaged file cannot hold its row.
        earlier = f"{int((made - timedelta(hours=3)).timestamp() * 1000):012x}7abc8{'0' * 15}"
        result = platform.feedback.record(
            "api",
            [
                {"inference_id": inference_id, "label": 1},
                {"inference_id": missing, "label": 1},
                {"inference_id": earlier, "label": 1},
            ],
        )
    finally:
        folder.remove([damaged])
    found, unfound, elsewhere = result.outcomes
    assert found.status is FeedbackStatus.ACCEPTED
    assert unfound.status is FeedbackStatus.UNKNOWN
    assert unfound.message is not None and damaged in unfound.message
    assert elsewhere.status is FeedbackStatus.UNKNOWN
    assert elsewhere.message is not None and "damaged" not in elsewhere.message


def test_an_id_in_another_spelling_labels_the_same_prediction(platform: Platform) -> None:
    """Upper-case hex and the dashed UUID form (a database's uuid column gives it back so)
    were unknown, 'or the id is mistyped', though issued_at read their time."""
    import uuid

    async def scenario() -> tuple[str, list[int]]:
        async with lifespan(serving_app(platform.settings)) as client:
            return await predict(client, [[1.0, 0.0]])

    started = datetime.now(UTC)
    inference_id, (predicted,) = asyncio.run(scenario())
    dashed = str(uuid.UUID(inference_id))
    spellings = [inference_id.upper(), f" {dashed} ", dashed.upper()]
    for spelling, label in zip(spellings, [predicted, 1 - predicted, predicted], strict=True):
        result = platform.feedback.record("api", [{"inference_id": spelling, "label": label}])
        (outcome,) = result.outcomes
        assert outcome.status is FeedbackStatus.ACCEPTED, outcome.message
        assert outcome.inference_id == inference_id
    # One prediction, labelled three times: the last label stands, once.
    (point,) = platform.feedback.quality(
        "api", window=datetime.now(UTC) - started, config=QualityConfig(min_rows=1)
    )
    assert point.rows == 1 and point.metrics["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("items", "match"),
    [
        ([], "no items"),
        ([{"label": 1}], "item 0 needs an inference_id"),
        ([{"inference_id": "x", "label": {"a": 1}}], r"item 0 \(inference id x\).*got dict"),
        ([{"inference_id": "x", "label": float("nan")}], "finite number"),
        ([{"inference_id": "x", "label": ""}], "empty string"),
        # Stored as JSON integers in 64 bits: a larger one came back as another number.
        ([{"inference_id": "x", "label": 2**64 - 1}], "whole number beyond 64 bits"),
        ([{"inference_id": "x", "label": -(2**63) - 1}], "whole number beyond 64 bits"),
        ([{"inference_id": "x", "label": 10**400}], "whole number beyond 64 bits"),
        ([{"inference_id": "x", "label": 1, "row": True}], "row must be a whole number"),
        ([{"inference_id": "x", "label": 1, "when": 3}], r"unknown fields \['when'\]"),
    ],
)
def test_malformed_items_are_refused_naming_the_item(
    platform: Platform, items: list[Any], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        platform.feedback.record("api", items)


def test_too_many_items_are_refused(platform: Platform) -> None:
    with pytest.raises(PayloadTooLarge):
        platform.feedback.record("api", [{"inference_id": "x", "label": 1}] * 10_001)


def test_quality_without_labels_is_insufficient_data_in_every_window(
    platform: Platform, tmp_path: Path
) -> None:
    until = datetime(2026, 1, 1, tzinfo=UTC)
    points = platform.feedback.quality(
        "api", window=timedelta(hours=1), since=until - timedelta(hours=3), until=until
    )
    assert [(p.start.hour, p.variant, p.model) for p in points] == [
        (21, "main", "score:1"),
        (22, "main", "score:1"),
        (23, "main", "score:1"),
    ]
    assert all(p.status is QualityStatus.INSUFFICIENT_DATA and p.rows == 0 for p in points)
    assert all(all(v is None for v in p.metrics.values()) for p in points)
    # As the CLI writes them (a text window was a TypeError).
    assert (
        platform.feedback.quality("api", window="1h", since="2025-12-31T21:00", until=until)
        == points
    )
    with pytest.raises(InvalidInput, match="the quality window must be a timedelta or text"):
        platform.feedback.quality("api", window=3600)  # type: ignore[arg-type]
    with pytest.raises(VariantNotFound, match="no variant 'blue'"):
        platform.feedback.quality("api", window=timedelta(hours=1), variant="blue")
    with pytest.raises(InvalidInput, match="must be before"):
        platform.feedback.quality("api", window=timedelta(hours=1), since=until, until=until)
    with pytest.raises(InvalidInput, match="longer than zero"):
        platform.feedback.quality("api", window=timedelta(0))


def test_quality_over_more_windows_than_it_scores_at_once_is_refused(platform: Platform) -> None:
    """One-second windows over a month were 2.6 million windows, each a pass over the labels:
    the read ran for hours (or out of memory) instead of being refused."""
    until = datetime(2026, 1, 1, tzinfo=UTC)
    day = until - timedelta(days=1)
    points = platform.feedback.quality("api", window=timedelta(minutes=1), since=day, until=until)
    assert len(points) == 1440  # a day of minutes, the most there may be
    with pytest.raises(InvalidInput, match=r"every 60 s .* would be 1,441"):
        platform.feedback.quality(
            "api", window=timedelta(minutes=1), since=day - timedelta(seconds=1), until=until
        )
    with pytest.raises(InvalidInput, match=r"would be 2,592,000; at most 1,440"):
        platform.feedback.quality(
            "api", window=timedelta(seconds=1), since=until - timedelta(days=30), until=until
        )


@pytest.mark.parametrize(
    ("window", "since", "until"),
    [
        # The last window ends at the latest time a datetime holds: the next start is past it.
        (timedelta(hours=1), MAX - timedelta(minutes=90), MAX - timedelta(minutes=1)),
        (timedelta(hours=1), None, MAX),
        # A window longer than all the time before ``until``: its default start is before year 1.
        (timedelta(days=3), None, datetime(1, 1, 2, tzinfo=UTC)),
        # A window reaching past year 9999 from its start, cut at ``until`` as every window is.
        (timedelta(days=3650), datetime(9995, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)),
    ],
)
def test_quality_near_the_ends_of_the_calendar_answers_instead_of_overflowing(
    platform: Platform, window: timedelta, since: datetime | None, until: datetime
) -> None:
    """Window arithmetic past year 9999 (or before year 1) raised OverflowError: a traceback in
    ``monitor quality --until 9999-12-31T23:59`` and a 500 in the Python API. Windows are cut at
    ``until`` and the default start at the earliest time, so no sum leaves the calendar."""
    points = platform.feedback.quality("api", window=window, since=since, until=until)
    assert points and all(p.status is QualityStatus.INSUFFICIENT_DATA for p in points)
    assert points[-1].end == until and points[0].start < until
    assert all(p.end - p.start <= window for p in points)
