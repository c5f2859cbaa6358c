"""Finding the predictions a feedback batch names costs one pass over the captured files,
whatever the ids: ids a server could not have made (no time of ours in them) are looked up
together among the ids callers sent (SageMaker ``InferenceId``), in one read of the label
window, and ids of ours spread over the whole label window list each partition folder at
most once, in one read of the capture.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain.feedback import FeedbackItem, FeedbackStatus
from modelyard.services.capture import CaptureService
from modelyard.services.feedback import FeedbackService
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.storage.capture_files import CaptureFolder
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.feedback_store import SqlFeedbackStore
from tests.serving.capture_support import invoke, make_platform, serving


class ListingFolder:
    """The real capture folder, recording which folders are listed."""

    def __init__(self, folder: CaptureFolder) -> None:
        self._folder = folder
        self.listed: list[str] = []

    @property
    def url(self) -> str:
        return self._folder.url

    def files(self, folder: str) -> Any:
        self.listed.append(folder)
        return self._folder.files(folder)

    def open(self, path: str) -> Any:
        return self._folder.open(path)


class CountingCapture:
    """The real capture service, counting the reads feedback makes of it."""

    def __init__(self, service: CaptureService) -> None:
        self._service = service
        self.calls = 0
        self.keys: list[str] = []

    def read(self, endpoint: str, **kwargs: Any) -> pd.DataFrame:
        self.calls += 1
        return self._service.read(endpoint, **kwargs)

    def find(
        self,
        endpoint: str,
        inference_ids: Collection[str],
        *,
        spans: Sequence[tuple[datetime, datetime]],
        columns: Sequence[str],
        skipped: list[str] | None = None,
        key: str = "inference_id",
    ) -> pd.DataFrame:
        self.calls += 1
        self.keys.append(key)
        return self._service.find(
            endpoint, inference_ids, spans=spans, columns=columns, skipped=skipped, key=key
        )


def uuid7_at(when: datetime) -> str:
    """An id of the servers' form made at ``when`` (as a client could forge one)."""
    rand = os.urandom(10).hex()
    return f"{int(when.timestamp() * 1000):012x}7{rand[:3]}8{rand[4:19]}"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("feedback-lookup") / "home")
    made.close()
    return made


@pytest.fixture(scope="module")
def served_id(platform: Platform) -> str:
    """The inference id of one request to ``api`` (capturing all), its row written."""
    folder = CaptureFolder(platform.settings.resolved_capture_url)

    async def scenario() -> str:
        async with serving(platform.settings, CaptureWriter(folder)) as client:
            inference_id, _ = await invoke(client, "api", [[0.5, 0.5, 1.0]])
            return inference_id

    return asyncio.run(scenario())


@pytest.fixture
def counted(
    platform: Platform,
) -> Iterator[tuple[FeedbackService, CountingCapture, ListingFolder]]:
    listing = ListingFolder(CaptureFolder(platform.settings.resolved_capture_url))
    capture = CountingCapture(CaptureService(listing))
    engine = make_engine(platform.settings.resolved_db_url)
    service = FeedbackService(
        SqlFeedbackStore(engine),
        capture,
        history=platform.endpoints.history,
        version=platform.registry.get_version,
    )
    yield service, capture, listing
    engine.dispose()


def test_ids_no_server_made_are_looked_up_as_callers_ids_in_one_read(
    served_id: str, counted: tuple[FeedbackService, CountingCapture, ListingFolder]
) -> None:
    service, capture, listing = counted
    # Random UUIDs (version 4): random bytes read as a UUIDv7 about once in 64, and one such
    # in 10,000 fell on a time past the label window (EXPIRED, seen in CI).
    forged = [uuid.uuid4().hex for _ in range(10_000)]
    forged[0] = "my-own-request-42"
    forged[1] = uuid7_at(datetime.now(UTC) + timedelta(days=2))  # made "in the future"
    result = service.record("api", [{"inference_id": i, "label": 1} for i in forged])
    assert {o.status for o in result.outcomes} == {FeedbackStatus.UNKNOWN}
    message = result.outcomes[0].message or ""
    assert "was sent with this InferenceId" in message
    assert "not an inference id a modelyard server made" in message
    assert "in the future" in result.outcomes[1].message
    # Every caller's id in one read of the label window (the served file has no callers'
    # ids: read as none, not refused); each folder listed once.
    assert capture.keys == ["caller_inference_id"]
    assert len(listing.listed) == len(set(listing.listed))


def test_a_batch_spread_over_the_label_window_is_one_pass(
    served_id: str, counted: tuple[FeedbackService, CountingCapture, ListingFolder]
) -> None:
    service, capture, listing = counted
    now = datetime.now(UTC)
    spread = [uuid7_at(now - timedelta(hours=7 * k + 1)) for k in range(100)]  # over 29 days
    items = [FeedbackItem(served_id, 1), *(FeedbackItem(i, 0) for i in spread)]
    outcomes = service.record("api", items).outcomes
    assert outcomes[0].status is FeedbackStatus.ACCEPTED
    assert {o.status for o in outcomes[1:]} == {FeedbackStatus.UNKNOWN}
    assert capture.calls == 1
    assert "api" not in listing.listed and len(listing.listed) == len(set(listing.listed))


def test_a_model_whose_signature_names_no_outputs_gets_its_labels_beside_its_answer(
    platform: Platform, counted: tuple[FeedbackService, CountingCapture, ListingFolder]
) -> None:
    """A booster registered without an input example names no outputs, yet its probabilities
    are captured as output.0 and output.1: the lookup read only the columns signatures name,
    so its labels were stored without the prediction quality scores them against."""
    import numpy as np
    import xgboost as xgb

    from modelyard.domain import CaptureConfig

    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 3))
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 2, "nthread": 1},
        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(int)),
        num_boost_round=5,
    )
    version = platform.registry.register("unnamed", booster, flavor="xgboost")
    assert version.signature is not None and version.signature.outputs == ()
    platform.endpoints.create(
        "unnamed", {"main": version.ref}, capture={"main": CaptureConfig.parse(100)}
    )
    folder = CaptureFolder(platform.settings.resolved_capture_url)

    async def scenario() -> tuple[str, list[Any]]:
        async with serving(platform.settings, CaptureWriter(folder)) as client:
            return await invoke(client, "unnamed", [[0.5, -0.5, 1.0]])

    inference_id, answer = asyncio.run(scenario())
    service, _, _ = counted
    (outcome,) = service.record("unnamed", [{"inference_id": inference_id, "label": 1}]).outcomes
    assert outcome.status is FeedbackStatus.ACCEPTED, outcome.message
    engine = make_engine(platform.settings.resolved_db_url)
    try:
        (stored,) = SqlFeedbackStore(engine).labels(
            "unnamed", since=datetime.now(UTC) - timedelta(hours=1)
        )
    finally:
        engine.dispose()
    assert stored.prediction == pytest.approx(answer[0])
