"""The ServerRegistry contract on every backend: a report replaces the server's previous one,
heartbeats are stamped and measured by the store's clock, removal forgets one server only, and
database errors arrive as modelyard errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelyard.domain import ServerRecord, ServerStatus
from modelyard.errors import StorageUnavailable
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.server_store import SqlServerStore
from modelyard.storage.sql.store import SqlMetadataStore
from tests.conftest import module_database
from tests.waiting import wait_for

STARTED = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_store(request: pytest.FixtureRequest) -> Iterator[SqlServerStore]:
    with module_database(request) as url:
        engine = make_engine(url)
        SqlMetadataStore(engine)  # creates the schema
        yield SqlServerStore(engine)
        engine.dispose()


@pytest.fixture
def store(module_store: SqlServerStore) -> SqlServerStore:
    for record in module_store.list_servers():
        module_store.remove(record.status.host, record.status.pid)
    return module_store


def status(host: str = "web-1", pid: int = 4242, revision: int = 7, **kw: object) -> ServerStatus:
    fields: dict[str, object] = {
        "url": f"http://{host}:8080",
        "heartbeat_s": 2.0,
        "started_at": STARTED,
        "endpoints": {"churn-api": 3, "fraud": 1},
        "failures": {},
    }
    fields.update(kw)
    return ServerStatus(host=host, pid=pid, revision=revision, **fields)  # type: ignore[arg-type]


def only(store: SqlServerStore) -> ServerRecord:
    records = store.list_servers()
    assert len(records) == 1, records
    return records[0]


def test_a_report_round_trips_and_is_stamped_now(store: SqlServerStore) -> None:
    before = datetime.now(UTC)
    sent = status(failures={"fraud": "fraud:2 failed to load: sha256 mismatch"})
    store.report(sent)
    record = only(store)
    assert record.status == sent
    # The store's clock: on PostgreSQL the database server's, here the same machine's.
    assert abs(record.heartbeat_at - before) < timedelta(seconds=30)
    assert 0 <= record.silent_s < 30


def test_a_new_report_replaces_the_previous_one(store: SqlServerStore) -> None:
    store.report(status(revision=7, failures={"fraud": "broken"}))
    first = only(store)
    store.report(status(revision=9, endpoints={"churn-api": 4}, failures={}))
    second = only(store)
    assert (second.status.revision, second.status.endpoints, second.status.failures) == (
        9,
        {"churn-api": 4},
        {},
    )
    assert second.heartbeat_at >= first.heartbeat_at


def test_silence_is_measured_by_the_store(store: SqlServerStore) -> None:
    # A server whose own clock is a day behind still reads as just heard from: the heartbeat
    # time is the store's, never the reporter's.
    store.report(status(started_at=STARTED - timedelta(days=1)))
    assert only(store).silent_s < 30
    first = only(store).silent_s
    grown = wait_for("silence to grow", lambda: only(store).silent_s, lambda s: s > first + 0.2)
    store.report(status())
    assert only(store).silent_s < grown


def test_servers_are_listed_by_host_then_pid_and_removed_one_by_one(store: SqlServerStore) -> None:
    for host, pid in (("web-2", 10), ("web-1", 300), ("web-1", 20)):
        store.report(status(host=host, pid=pid))
    names = [r.status.name for r in store.list_servers()]
    assert names == ["web-1:20", "web-1:300", "web-2:10"]
    store.remove("web-1", 300)
    store.remove("web-1", 300)  # unknown now: nothing happens
    store.remove("elsewhere", 1)
    assert [r.status.name for r in store.list_servers()] == ["web-1:20", "web-2:10"]


def test_odd_failure_text_is_kept(store: SqlServerStore) -> None:
    # A failure quotes what a model library raised: any text, long, non-ASCII, control bytes.
    reason = "churn:3 failed to load: «corrupt» \x00\x1b[31m " + "x" * 5000
    store.report(status(failures={"churn-api": reason}))
    assert only(store).status.failures == {"churn-api": reason}


def test_database_errors_are_modelyard_errors() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    unreachable = SqlServerStore(engine)
    with pytest.raises(StorageUnavailable, match=r"127\.0\.0\.1:1"):
        unreachable.report(status())
    with pytest.raises(StorageUnavailable):
        unreachable.list_servers()
    engine.dispose()
