"""The LeaseStore contract on every backend: of any number of contenders for one ``(name, tick)``
(threads with their own connections, or processes), exactly one takes it; a finished tick is
never taken again; an expired one is taken over once; ticks only move forward; pruning keeps
the newest tick of each name."""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelyard.errors import InvalidInput
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.lease_store import SqlLeaseStore
from modelyard.storage.sql.store import SqlMetadataStore
from tests.waiting import wait_for

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
TICKS = [T0 + timedelta(minutes=i) for i in range(12)]
LONG = timedelta(minutes=10)


@pytest.fixture
def url(db_url: str) -> Iterator[str]:
    engine = make_engine(db_url)
    SqlMetadataStore(engine)  # creates the schema
    engine.dispose()
    yield db_url


@pytest.fixture
def store(url: str) -> Iterator[SqlLeaseStore]:
    engine = make_engine(url)
    yield SqlLeaseStore(engine)
    engine.dispose()


def _contend(url: str, holder: str, start: threading.Barrier, won: list[datetime]) -> None:
    engine = make_engine(url)  # its own connections, as another process would have
    try:
        leases = SqlLeaseStore(engine)
        for tick in TICKS:
            start.wait(30)  # every contender asks for the same tick at the same moment
            if leases.acquire("monitor:churn", tick, holder, LONG):
                won.append(tick)
                assert leases.finish("monitor:churn", tick, holder)
    finally:
        engine.dispose()


def test_threads_each_tick_is_taken_once(url: str) -> None:
    contenders = 3
    start = threading.Barrier(contenders)
    won: dict[str, list[datetime]] = {f"t{i}": [] for i in range(contenders)}
    threads = [
        threading.Thread(target=_contend, args=(url, name, start, ticks))
        for name, ticks in won.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    taken = sorted(t for ticks in won.values() for t in ticks)
    assert taken == TICKS, f"each tick once, by one holder: {won}"


def _contend_in_process(url: str, holder: str, start: mp.synchronize.Barrier) -> list[str]:  # type: ignore[name-defined]
    engine = make_engine(url)
    try:
        leases = SqlLeaseStore(engine)
        won = []
        for tick in TICKS:
            start.wait(60)
            if leases.acquire("alarm:p99", tick, holder, LONG):
                won.append(tick.isoformat())
        return won
    finally:
        engine.dispose()


def test_processes_each_tick_is_taken_once(url: str) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            pending = [
                pool.apply_async(_contend_in_process, (url, f"p{i}", start)) for i in range(2)
            ]
            results = [p.get(timeout=120) for p in pending]
    taken = sorted(t for won in results for t in won)
    assert taken == [t.isoformat() for t in TICKS], results


def test_a_finished_tick_is_never_taken_again(store: SqlLeaseStore) -> None:
    assert store.acquire("monitor:a", T0, "one", timedelta(seconds=0))
    assert store.finish("monitor:a", T0, "one")
    # Even long past its expiry: finished means done.
    assert not store.acquire("monitor:a", T0, "two", LONG)
    lease = store.get("monitor:a", T0)
    assert lease is not None and lease.holder == "one" and lease.done_at is not None


def test_an_expired_lease_is_taken_over_once(store: SqlLeaseStore) -> None:
    assert store.acquire("monitor:a", T0, "dead", timedelta(seconds=0))
    # "dead" never renews nor finishes; once its lease has expired "heir" takes it.
    wait_for("the lease to expire", lambda: store.acquire("monitor:a", T0, "heir", LONG))
    lease = store.get("monitor:a", T0)
    assert lease is not None
    assert (lease.holder, lease.attempts, lease.done_at) == ("heir", 2, None)
    assert not store.acquire("monitor:a", T0, "third", LONG), "the heir's lease is live"
    assert not store.renew("monitor:a", T0, "dead", LONG), "the dead holder lost it"
    assert not store.finish("monitor:a", T0, "dead")
    assert store.renew("monitor:a", T0, "heir", LONG)
    assert store.finish("monitor:a", T0, "heir")


def test_a_live_lease_is_not_taken(store: SqlLeaseStore) -> None:
    assert store.acquire("monitor:a", T0, "one", LONG)
    assert not store.acquire("monitor:a", T0, "two", LONG)
    assert not store.acquire("monitor:a", T0, "one", LONG), "not even by its holder"
    other = store.get("monitor:b", T0)
    assert other is None
    assert store.acquire("monitor:b", T0, "two", LONG), "another name is another lease"


def test_ticks_only_move_forward(store: SqlLeaseStore) -> None:
    later = T0 + timedelta(minutes=10)
    assert store.acquire("monitor:a", later, "one", LONG)
    # A process whose clock lags asks for an older tick: refused, whether it ran or not.
    assert not store.acquire("monitor:a", T0, "slow", LONG)
    assert store.get("monitor:a", T0) is None
    assert store.acquire("monitor:b", T0, "slow", LONG), "other names are not held back"


def test_ticks_in_other_zones_are_the_same_instant(store: SqlLeaseStore) -> None:
    from zoneinfo import ZoneInfo

    assert store.acquire("monitor:a", T0, "one", LONG)
    paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    assert not store.acquire("monitor:a", paris, "two", LONG)
    assert store.get("monitor:a", paris) is not None


def test_a_naive_tick_is_refused(store: SqlLeaseStore) -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        store.acquire("monitor:a", datetime(2026, 12, 2, 10, 0), "one", LONG)
    assert store.get("monitor:a", T0) is None


def test_prune_keeps_the_newest_tick_of_each_name(store: SqlLeaseStore) -> None:
    for tick in TICKS[:3]:
        assert store.acquire("monitor:a", tick, "one", LONG)
        assert store.finish("monitor:a", tick, "one")
    assert store.acquire("monitor:b", TICKS[0], "one", LONG)
    assert store.finish("monitor:b", TICKS[0], "one")
    assert store.acquire("monitor:c", TICKS[0], "one", LONG)  # held: kept
    assert store.acquire("monitor:c", TICKS[1], "one", LONG)
    deleted = store.prune(TICKS[-1])
    assert deleted == 2  # monitor:a's two older finished ticks
    assert [store.get("monitor:a", t) is not None for t in TICKS[:3]] == [False, False, True]
    assert store.get("monitor:b", TICKS[0]) is not None, "the newest of b stays"
    assert store.get("monitor:c", TICKS[0]) is not None, "a live lease stays"
    # The kept newest tick still holds the line: the pruned ones cannot run again.
    assert not store.acquire("monitor:a", TICKS[0], "late", LONG)
