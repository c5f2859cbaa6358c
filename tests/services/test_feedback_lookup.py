"""Finding the predictions a feedback batch names costs one pass over the captured files,
whatever the ids: ids a server could not have made (no time of ours in them; servers take
no id from clients) are unknown without any read, and ids spread over the whole label window
list each partition folder at most once, in one read of the capture.
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
    ) -> pd.DataFrame:
        self.calls += 1
        return self._service.find(endpoint, inference_ids, spans=spans, columns=columns)


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


def test_ids_no_server_made_are_unknown_without_any_read(
    counted: tuple[FeedbackService, CountingCapture, ListingFolder],
) -> None:
    service, capture, listing = counted
    # Random UUIDs (version 4): random bytes read as a UUIDv7 about once in 64, and one such
    # in 10,000 fell on a time past the label window (EXPIRED, seen in CI).
    forged = [uuid.uuid4().hex for _ in range(10_000)]
    forged[0] = "my-own-request-42"
    forged[1] = uuid7_at(datetime.now(UTC) + timedelta(days=2))  # made "in the future"
    result = service.record("api", [{"inference_id": i, "label": 1} for i in forged])
    assert {o.status for o in result.outcomes} == {FeedbackStatus.UNKNOWN}
    assert "not an inference id a modelyard server made" in result.outcomes[0].message
    assert "in the future" in result.outcomes[1].message
    assert capture.calls == 0 and listing.listed == []


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
