"""A lookup by a caller's id (SageMaker ``InferenceId``, or any id that is not ours, a
mistyped one too) opens only the captured files that may hold callers' ids: the writer marks
each file's name (``….ids.parquet`` when its rows carry some, ``….noids.parquet`` when they
carry none), so an endpoint whose requests came without ids costs such a lookup folder
listings and no file opened; files named before the marks (``….parquet``) may hold the
column, and are still read. Measured by the real capture folder's count of opened files.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain import CaptureConfig
from modelyard.domain.capture import partition
from modelyard.domain.feedback import FeedbackStatus
from modelyard.services.capture import CaptureService
from modelyard.services.feedback import FeedbackService
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.storage.capture_files import CaptureFolder
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.feedback_store import SqlFeedbackStore
from tests.serving.capture_support import make_platform, serving

BODY = "0.5,0.5,1.0\n"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    made = make_platform(tmp_path_factory.mktemp("feedback-caller-files") / "home")
    for name in ("plain", "tagged", "legacy"):
        made.endpoints.create(name, {"main": "churn:1"}, capture={"main": CaptureConfig.parse(100)})
    yield made
    made.close()


def send(platform: Platform, endpoint: str, callers: list[str | None]) -> list[str]:
    """One request to ``endpoint`` per caller's id (None: sent without one), each written to
    its own file; our ids."""
    writer = CaptureWriter(CaptureFolder(platform.settings.resolved_capture_url))

    async def scenario() -> list[str]:
        ours = []
        async with serving(platform.settings, writer) as client:
            for caller in callers:
                headers = {"content-type": "text/csv", "accept": "application/json"}
                if caller is not None:
                    headers["x-amzn-sagemaker-inference-id"] = caller
                answer: httpx.Response = await client.post(
                    f"/endpoints/{endpoint}/invocations", content=BODY, headers=headers
                )
                assert answer.status_code == 200, answer.text
                ours.append(answer.headers["x-modelyard-inference-id"])
                assert await asyncio.to_thread(writer.flush)  # its own file
        return ours

    return asyncio.run(scenario())


def files(platform: Platform, endpoint: str) -> list[Path]:
    return sorted((platform.settings.home / "artifacts" / "capture" / endpoint).rglob("*.parquet"))


def feedback(platform: Platform) -> tuple[FeedbackService, CaptureFolder]:
    """A feedback service reading through a capture folder of its own, whose count of opened
    files is the lookup's alone."""
    folder = CaptureFolder(platform.settings.resolved_capture_url)
    service = FeedbackService(
        SqlFeedbackStore(make_engine(platform.settings.resolved_db_url)),
        CaptureService(folder),
        history=platform.endpoints.history,
        version=platform.registry.get_version,
    )
    return service, folder


def test_unknown_ids_open_no_file_of_an_endpoint_without_callers_ids(platform: Platform) -> None:
    send(platform, "plain", [None, None, None])
    written = files(platform, "plain")
    assert [f.name.endswith(".noids.parquet") for f in written] == [True] * 3
    # The same files in 60 more partition hours over the label window: 183 files.
    now = datetime.now(UTC)
    root = platform.settings.home / "artifacts" / "capture"
    for k in range(1, 61):
        hour = root / partition("plain", now - timedelta(hours=11 * k))
        hour.mkdir(parents=True, exist_ok=True)
        for file in written:
            shutil.copy(file, hour / file.name)
    assert len(files(platform, "plain")) == 183
    service, folder = feedback(platform)
    junk = ["order-1234", "0rder-1234", "x" * 128, *(f"junk-{k}" for k in range(100))]
    result = service.record("plain", [{"inference_id": i, "label": 1} for i in junk])
    assert {o.status for o in result.outcomes} == {FeedbackStatus.UNKNOWN}
    assert folder.files_opened == 0


def test_marked_files_are_found_and_only_they_are_opened(platform: Platform) -> None:
    ours = send(platform, "tagged", [None, "c-1", None, "c-2", None])
    names = [f.name for f in files(platform, "tagged")]
    assert sorted(n.rpartition("-")[2] for n in names) == [
        "000001.noids.parquet",
        "000002.ids.parquet",
        "000003.noids.parquet",
        "000004.ids.parquet",
        "000005.noids.parquet",
    ]
    service, folder = feedback(platform)
    result = service.record(
        "tagged",
        [
            {"inference_id": "c-1", "label": 1},
            {"inference_id": "c-2", "label": 0},
            {"inference_id": "c-3", "label": 0},
        ],
    )
    assert [o.status for o in result.outcomes] == [
        FeedbackStatus.ACCEPTED,
        FeedbackStatus.ACCEPTED,
        FeedbackStatus.UNKNOWN,
    ], [o.message for o in result.outcomes]
    assert folder.files_opened == 2  # the two marked files, not the three others
    # Stored under our ids of those requests.
    engine = make_engine(platform.settings.resolved_db_url)
    try:
        stored = SqlFeedbackStore(engine).get("tagged", [ours[1], ours[3]])
    finally:
        engine.dispose()
    assert sorted(t.inference_id for t in stored) == sorted([ours[1], ours[3]])


def test_files_named_before_the_marks_are_still_read(platform: Platform) -> None:
    send(platform, "legacy", ["old-1", None])
    for file in files(platform, "legacy"):  # as a server of an earlier version named them
        for mark in (".noids.parquet", ".ids.parquet"):
            if file.name.endswith(mark):
                file.rename(file.with_name(file.name.removesuffix(mark) + ".parquet"))
    names = [f.name for f in files(platform, "legacy")]
    assert len(names) == 2 and not any(n.endswith("ids.parquet") for n in names), names
    service, folder = feedback(platform)
    (outcome,) = service.record("legacy", [{"inference_id": "old-1", "label": 1}]).outcomes
    assert outcome.status is FeedbackStatus.ACCEPTED, outcome.message
    assert folder.files_opened == 2  # either may hold callers' ids: both are opened
