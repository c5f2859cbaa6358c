"""``run_leased`` over a real SQLite lease store: the work's own outcome stands when finishing
the lease fails, and stopping the renewal thread is bounded when a renewal hangs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from modelyard.errors import DatabaseUnavailable
from modelyard.services.leased import Ran, finished_elsewhere, run_leased
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.lease_store import SqlLeaseStore
from modelyard.storage.sql.store import SqlMetadataStore
from tests.waiting import wait_for

TICK = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
LONG = timedelta(minutes=10)


class FailingFinish(SqlLeaseStore):
    """The real store, whose ``finish`` fails as a database that just went away does."""

    def finish(self, name: str, tick: datetime, holder: str) -> bool:
        raise DatabaseUnavailable("the metadata database went away")


class HangingRenew(SqlLeaseStore):
    """The real store, whose ``renew`` hangs (a locked database) until released."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.entered = threading.Event()
        self.release = threading.Event()

    def renew(self, name: str, tick: datetime, holder: str, ttl: timedelta) -> bool:
        self.entered.set()
        self.release.wait(60)
        return super().renew(name, tick, holder, ttl)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'modelyard.db'}")
    SqlMetadataStore(engine)  # creates the schema
    yield engine
    engine.dispose()


def test_a_failing_finish_leaves_the_result_of_the_work(engine: Engine) -> None:
    leases = FailingFinish(engine)
    ran = run_leased(leases, "loop", TICK, lambda: 42, holder="one", ttl=LONG)
    assert ran == Ran(42)
    found = leases.get("loop", TICK)
    assert found is not None and found.done_at is None, "unfinished: it expires, then reruns"


def test_a_failing_finish_leaves_the_error_of_the_work(engine: Engine) -> None:
    leases = FailingFinish(engine)

    def work() -> int:
        raise ValueError("the work's own failure")

    with pytest.raises(ValueError, match="the work's own failure"):
        run_leased(leases, "loop", TICK, work, holder="one", ttl=LONG)


def test_stopping_is_bounded_while_a_renewal_hangs(engine: Engine) -> None:
    leases = HangingRenew(engine)
    outcome: list[Ran[str] | None] = []

    def work() -> str:
        assert leases.entered.wait(60), "the keeper renews every third of the ttl"
        return "done"

    def run() -> None:
        outcome.append(
            run_leased(leases, "loop", TICK, work, holder="one", ttl=timedelta(seconds=0.3))
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for("run_leased to return while the renewal hangs", lambda: outcome)
        assert outcome == [Ran("done")]
        assert finished_elsewhere(leases, "loop", TICK), "finished: nobody runs it again"
    finally:
        leases.release.set()
        thread.join(60)


def test_a_tick_held_by_a_live_process_is_not_finished_elsewhere(engine: Engine) -> None:
    leases = SqlLeaseStore(engine)
    assert leases.acquire("loop", TICK, "other", LONG)
    assert run_leased(leases, "loop", TICK, lambda: 1, holder="one", ttl=LONG) is None
    assert not finished_elsewhere(leases, "loop", TICK)
    assert leases.finish("loop", TICK, "other")
    assert finished_elsewhere(leases, "loop", TICK)
