"""The status reporter against a real SQLite store and a real deployer: it reports at start, on
every plan change (without waiting for the heartbeat) and on every heartbeat; it survives a
store that refuses writes, logging once, and catches up when the store is back; a clean stop
removes its entry, even a stop while the store is down returns."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import ServerRecord, ServerStatus
from modelyard.services.servers import ServerService
from modelyard.serving.app import predict_executor
from modelyard.serving.deployer import Deployer
from modelyard.serving.loader import load_served
from modelyard.serving.reporter import StatusReporter
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.plan_source import SqlPlanSource
from modelyard.storage.sql.server_store import SqlServerStore
from tests.blobs import corrupt_model_file, unchecked_endpoints
from tests.waiting import DEADLINE_S

T = TypeVar("T")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """churn:1, churn:2 and churn:3 (tiny XGBoost models) and endpoint ``api`` on churn:1."""
    import xgboost as xgb

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(60, 3))
    p = build(load_settings({}, home=tmp_path / "home"))
    for rounds in (1, 2, 3):
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
            xgb.DMatrix(rows, label=(rows[:, 0] > 0).astype(int)),
            num_boost_round=rounds,
        )
        p.registry.register("churn", booster, flavor="xgboost", input_example=rows[:3])
    p.endpoints.create("api", {"main": "churn:1"})
    yield p
    p.close()


class Counted:
    """The real store, counting the reports that reach it (to wait for retries)."""

    def __init__(self, store: SqlServerStore) -> None:
        self.store = store
        self.reports = 0

    def report(self, status: ServerStatus) -> None:
        self.reports += 1
        self.store.report(status)

    def remove(self, host: str, pid: int) -> None:
        self.store.remove(host, pid)


def mine(store: SqlServerStore) -> ServerRecord | None:
    return next((r for r in store.list_servers() if r.status.pid == os.getpid()), None)


async def until(what: str, observe: Callable[[], T], ok: Callable[[T], Any]) -> T:
    """Poll ``observe`` (off the loop, so the reporter runs meanwhile) until ``ok`` holds."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        seen = await asyncio.to_thread(observe)
        if ok(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {seen!r}")
        await asyncio.sleep(0.02)


@pytest.fixture
def engine_for(platform: Platform) -> Iterator[Callable[..., Any]]:
    """Engines on the platform's database, disposed after the test."""
    made: list[Any] = []

    def make(**kw: Any) -> Any:
        made.append(make_engine(platform.settings.resolved_db_url, **kw))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


def deployer_for(platform: Platform, engine: Any) -> Deployer:
    return Deployer(
        SqlPlanSource(engine),
        load=lambda spec: load_served(
            platform.artifacts, spec, platform.settings.home / "tmp" / "serving"
        ),
        predict_executor=predict_executor(),
        poll_interval_s=0.05,
    )


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_reports_at_start_on_every_change_and_removes_itself(
    platform: Platform, engine_for: Callable[..., Any]
) -> None:
    store = SqlServerStore(engine_for())
    deployer = deployer_for(platform, engine_for())
    endpoints = unchecked_endpoints(platform)

    async def main() -> None:
        await deployer.sync()
        # A heartbeat far away: only changes can explain the reports seen below.
        reporter = StatusReporter(deployer, store, url="http://here:1", heartbeat_s=300)
        await reporter.start()
        first = mine(store)
        assert first is not None, "the first report is written before start() returns"
        assert first.status.url == "http://here:1"
        assert (first.status.endpoints, first.status.failures) == ({"api": 1}, {})
        assert first.status.revision == platform.servers.plan_revision()
        polling = asyncio.create_task(deployer.run())

        platform.endpoints.update("api", {"main": "churn:2"})
        changed = await until(
            "the new config reported",
            lambda: mine(store),
            lambda r: r.status.endpoints == {"api": 2},
        )
        assert changed.status.revision == platform.servers.plan_revision()

        restore = corrupt_model_file(platform, "churn:3")
        endpoints.update("api", {"main": "churn:3"})
        failed = await until(
            "the failure reported", lambda: mine(store), lambda r: "api" in r.status.failures
        )
        assert "churn:3" in failed.status.failures["api"]
        assert "corrupt" in failed.status.failures["api"].lower()
        assert failed.status.endpoints == {"api": 2}, "it still serves the config it had"
        assert failed.status.revision == platform.servers.plan_revision()
        # The deployer retries a failed load every few seconds: once the blob is good again,
        # the recovery is reported like any change.
        restore()
        await until(
            "the recovery reported",
            lambda: mine(store),
            lambda r: r.status.failures == {} and r.status.endpoints == {"api": 3},
        )

        await stopped(polling)
        await reporter.stop()
        assert mine(store) is None, "a clean stop removes the server's entry"
        deployer.close()

    asyncio.run(main())


def test_heartbeats_keep_the_server_live(
    platform: Platform, engine_for: Callable[..., Any]
) -> None:
    store = SqlServerStore(engine_for())
    deployer = deployer_for(platform, engine_for())

    async def main() -> None:
        await deployer.sync()
        reporter = StatusReporter(deployer, store, url=None, heartbeat_s=0.1)
        await reporter.start()
        first = mine(store)
        assert first is not None
        beats: set[object] = set()
        await until(
            "three more heartbeats",
            lambda: mine(store),
            lambda r: beats.add(r.heartbeat_at) or len(beats - {first.heartbeat_at}) >= 3,
        )
        # Judged live against its own 0.1 s interval (with room for a loaded machine).
        judge = ServerService(store, platform.endpoint_store, stale_after=50)
        (view,) = [v for v in judge.servers() if v.status.pid == os.getpid()]
        assert view.live and view.current
        await reporter.stop()
        deployer.close()

    asyncio.run(main())


def test_store_errors_are_survived_logged_once_and_caught_up(
    platform: Platform, engine_for: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The reporter's store gives up on a lock after 50 ms; a second connection holding the
    # write lock makes every report fail, as a store that is down or overloaded would.
    db_path = str(platform.settings.resolved_db_url).removeprefix("sqlite:///")
    store = Counted(SqlServerStore(engine_for(busy_timeout_s=0.05)))
    reader = SqlServerStore(engine_for())
    deployer = deployer_for(platform, engine_for())
    caplog.set_level(logging.INFO, logger="modelyard.serving")

    async def main() -> None:
        await deployer.sync()
        platform.endpoints.update("api", {"main": "churn:2"})  # applied only later
        lock = sqlite3.connect(db_path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        reporter = StatusReporter(deployer, store, url=None, heartbeat_s=0.1)
        await reporter.start()  # does not raise
        assert reporter.reports == 0
        await until("several failed reports", lambda: store.reports, lambda n: n >= 5)
        warnings = [r for r in caplog.records if "could not report" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
        assert "locked" in warnings[0].getMessage()

        # The server goes on meanwhile (reads still work, the reporter never blocks the loop),
        # and the change it applies is in the first report that gets through.
        await deployer.sync()
        assert deployer.table.endpoints["api"].config_number == 2
        failed_so_far = store.reports
        await until("more failed reports", lambda: store.reports, lambda n: n > failed_so_far)
        assert mine(reader) is None
        lock.execute("ROLLBACK")
        lock.close()
        back = await until("reports to get through again", lambda: mine(reader), bool)
        assert back is not None and back.status.endpoints == {"api": 2}
        # The row is visible as soon as the write commits; the reporter logs its recovery once
        # the write returns to the event loop, a moment later.
        await until(
            "the recovery logged",
            lambda: any("again" in r.getMessage() for r in caplog.records),
            bool,
        )
        assert len([r for r in caplog.records if "could not report" in r.getMessage()]) == 1

        # A stop while the store is down again returns, with a warning, instead of hanging.
        lock = sqlite3.connect(db_path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        await asyncio.wait_for(reporter.stop(), timeout=DEADLINE_S)
        assert any("could not remove" in r.getMessage() for r in caplog.records)
        lock.execute("ROLLBACK")
        lock.close()
        assert mine(reader) is not None, "left behind: it will read as stale"
        deployer.close()

    asyncio.run(main())
