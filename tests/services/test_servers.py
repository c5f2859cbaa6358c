"""The server service over a real store: live or stale by each server's own heartbeat interval,
current or behind the plan revision, what an endpoint looks like from every server, which
endpoints a live server cannot serve, and the wait a deploy makes (served, failed, nobody)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import ServerStatus
from modelyard.errors import InvalidName, ModelLoadFailed, ModelNotReady, NoServerRunning
from modelyard.services.servers import ServerService
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.server_store import SqlServerStore
from tests.waiting import wait_for


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """Endpoints ``a`` and ``b`` serving churn:1 (a tiny XGBoost model)."""
    import xgboost as xgb

    rows = np.random.default_rng(0).normal(size=(40, 3))
    booster = xgb.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(rows, label=(rows[:, 0] > 0).astype(int)),
        num_boost_round=1,
    )
    p = build(load_settings({}, home=tmp_path / "home"))
    p.registry.register("churn", booster, flavor="xgboost", input_example=rows[:3])
    p.endpoints.create("a", {"main": "churn:1"})
    p.endpoints.create("b", {"main": "churn:1"})
    yield p
    p.close()


@pytest.fixture
def store(platform: Platform) -> Iterator[SqlServerStore]:
    engine = make_engine(platform.settings.resolved_db_url)
    yield SqlServerStore(engine)
    engine.dispose()


def report(
    store: SqlServerStore,
    pid: int,
    revision: int,
    *,
    heartbeat_s: float = 60.0,
    endpoints: dict[str, int] | None = None,
    failures: dict[str, str] | None = None,
) -> None:
    store.report(
        ServerStatus(
            host="web",
            pid=pid,
            url=f"http://web:{pid}",
            revision=revision,
            heartbeat_s=heartbeat_s,
            started_at=datetime.now(UTC),
            endpoints={"a": 1, "b": 1} if endpoints is None else endpoints,
            failures=failures or {},
        )
    )


def test_live_stale_current_behind(platform: Platform, store: SqlServerStore) -> None:
    servers = platform.servers
    now = servers.plan_revision()
    report(store, 1, now)
    report(store, 2, now - 1)
    report(store, 3, now, heartbeat_s=0.05)  # silent for 3 x 50 ms: stale
    views = wait_for("server 3 stale", servers.servers, lambda v: len(v) == 3 and not v[2].live)
    assert [(v.status.pid, v.live, v.current) for v in views] == [
        (1, True, True),
        (2, True, False),
        (3, False, True),
    ]
    assert views[0].to_dict()["state"] == "live" and views[2].to_dict()["state"] == "stale"
    # A server silent for long is forgotten (here after 0.2 s), while the others report on.
    quick = ServerService(store, platform.endpoint_store, stale_after=3, forget_after_s=0.2)

    def beat_and_list() -> list[int]:
        report(store, 1, now)
        report(store, 2, now - 1)
        return [x.status.pid for x in quick.servers()]

    wait_for("server 3 forgotten", beat_and_list, lambda pids: pids == [1, 2])


def test_an_endpoint_from_every_server_and_what_cannot_be_served(
    platform: Platform, store: SqlServerStore
) -> None:
    servers = platform.servers
    now = servers.plan_revision()
    report(store, 1, now)
    report(store, 2, now, endpoints={"a": 1}, failures={"b": "churn:9 failed to load: corrupt"})
    report(store, 3, now, heartbeat_s=0.05, failures={"a": "old news"})
    wait_for("server 3 stale", servers.servers, lambda v: not v[2].live)
    seen = servers.for_endpoint("b")
    assert [(s.server.status.pid, s.config, s.failure, s.serves_current) for s in seen] == [
        (1, 1, None, True),
        (2, None, "churn:9 failed to load: corrupt", False),
        (3, 1, None, False),
    ]
    assert seen[1].to_dict()["failure"] == "churn:9 failed to load: corrupt"
    unservable = servers.unservable()  # a stale server's failures do not count
    assert {k: [s.server.status.pid for s in v] for k, v in unservable.items()} == {"b": [2]}
    with pytest.raises(InvalidName):
        servers.for_endpoint("no spaces")


def test_the_wait_of_a_deploy(platform: Platform, store: SqlServerStore) -> None:
    servers = platform.servers
    before = servers.plan_revision()
    with pytest.raises(NoServerRunning, match="modelyard serve"):
        servers.wait_until_served("a", before, timeout=0.2)

    platform.endpoints.update("a", {"next": "churn:1"})  # the config it serves writes nothing
    after = servers.plan_revision()
    report(store, 1, before, endpoints={"a": 1})  # live, but has not seen the change
    with pytest.raises(ModelNotReady, match=f"web:1 at revision {before}") as behind:
        servers.wait_until_served("a", after, timeout=0.2)
    assert type(behind.value) is ModelNotReady

    report(store, 2, after, endpoints={"a": 1}, failures={"a": "churn:1 failed to load: boom"})
    with pytest.raises(ModelLoadFailed, match="http://web:2 could not load it: churn:1 failed"):
        servers.wait_until_served("a", after, timeout=30)  # at once: the server has tried

    report(store, 1, after, endpoints={"a": 2})
    served = servers.wait_until_served("a", after, timeout=30)
    assert (served.server.status.pid, served.config) == (1, 2)
