"""The deployer's plan poll against a store that accepts the read and never answers (a proxy,
a firewall keeping the connection): the server keeps serving its plan, and says so once, then
again when the store answers."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from pathlib import Path

import pytest

from modelyard.serving.app import predict_executor
from modelyard.serving.deployer import Deployer
from modelyard.serving.loader import load_served
from modelyard.storage.artifacts import FsspecArtifactStore
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.plan_source import SqlPlanSource
from tests.serving.capture_support import make_platform
from tests.waiting import DEADLINE_S, POLL_S

STUCK = "has not answered the deployment plan poll"
BACK = "the deployment plan poll returned after"


class GatedSource:
    """The store's plan source, whose revision reads wait while the gate is shut."""

    def __init__(self, inner: SqlPlanSource) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()

    def revision(self) -> int:
        self.gate.wait(DEADLINE_S)
        return self.inner.revision()

    def load_plan(self):  # type: ignore[no-untyped-def]
        return self.inner.load_plan()


def test_a_poll_the_store_never_answers_is_said_once_and_its_end_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    platform = make_platform(tmp_path / "home")
    settings = platform.settings
    engine = make_engine(settings.resolved_db_url)
    source = GatedSource(SqlPlanSource(engine))
    artifacts = FsspecArtifactStore(settings.resolved_artifact_url)
    deployer = Deployer(
        source,
        load=functools.partial(load_served, artifacts, scratch=settings.home / "tmp" / "s"),
        predict_executor=predict_executor(),
        poll_interval_s=0.05,
        slow_read_s=0.2,
    )

    def said(words: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if words in r.getMessage()]

    async def until(words: str) -> None:
        async with asyncio.timeout(DEADLINE_S):
            while not said(words):
                await asyncio.sleep(POLL_S)

    async def scenario() -> tuple[int, int]:
        await deployer.sync()
        serving = deployer.table.revision
        polling = asyncio.create_task(deployer.run())
        try:
            source.gate.clear()  # the next read waits: the store "never" answers
            await until(STUCK)
            assert deployer.table.revision == serving  # still serving what it served
            source.gate.set()
            await until(BACK)
        finally:
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
        return serving, deployer.table.revision

    caplog.set_level(logging.WARNING, logger="modelyard.serving")
    try:
        before, after = asyncio.run(scenario())
    finally:
        source.gate.set()
        engine.dispose()
        platform.close()
    assert after == before
    assert len(said(STUCK)) == 1, [r.getMessage() for r in caplog.records]
    assert f"still serving revision {before}" in said(STUCK)[0].getMessage()
