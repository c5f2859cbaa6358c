"""The metadata database going away under load: a 2-worker ``modelyard serve`` on PostgreSQL
keeps answering while its database connections are cut, and still converges on a change.

The data plane reads the store only to poll the deployment revision; every answer comes from
the in-memory route table. So cutting the server's PostgreSQL sessions
(``pg_terminate_backend``, as a database restart or failover does) must not fail a single
request, and each worker must reconnect on its own and pick up the next endpoint change. The
same holds while the database refuses new sessions for a while (a restart), and the server
says so in one log line per worker when it starts and one when it ends, not a traceback on
every poll.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from tests.conftest import PG_ADMIN_URL, module_database
from tests.e2e.conftest import MODELYARD, Server, clean_env, expected, free_port

INVOKE = "/endpoints/churn-api/invocations"
CLIENTS = 4
MAX_REQUESTS = 3000  # per client: the load is bounded even if a wait below misbehaves
RECONNECT_EVERY = 25  # requests per connection, so that the load reaches both workers
CUTS = 5
APP_NAME = "modelyard-e2e-serve"  # tags the server's sessions, so only they are counted
POLL_FAILED = "could not refresh the deployment plan"  # the deployer's log lines
POLL_RECOVERED = "deployment plan refreshed again"


@dataclass
class Outage:
    platform: Platform
    server: Server
    database: str


@pytest.fixture(scope="module", params=["postgresql"])
def outage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, models: Any
) -> Iterator[Outage]:
    """A fresh PostgreSQL database with ``churn`` versions 1-3, endpoint ``churn-api`` on
    version 1, and a 2-worker server on it."""
    import pandas as pd

    with module_database(request) as url:
        home = tmp_path_factory.mktemp("outage")
        platform = build(load_settings({}, home=home, db_url=url))
        example = pd.DataFrame(models["x"][:5], columns=models["names"])
        for booster in models["boosters"]:
            platform.registry.register("churn", booster, flavor="xgboost", input_example=example)
        platform.endpoints.create("churn-api", {"main": "churn:1"})
        server_url = sa.make_url(url).update_query_dict({"application_name": APP_NAME})
        port = free_port()
        log = home / "server.log"
        env = clean_env(
            home,
            MODELYARD_DB_URL=server_url.render_as_string(hide_password=False),
            MODELYARD_PLAN_POLL_S="0.2",
        )
        argv = [MODELYARD, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Server(f"http://127.0.0.1:{port}", process, log)
        try:
            server.wait_ready()
            yield Outage(platform, server, str(sa.make_url(url).database))
        finally:
            server.stop()
            platform.close()


def _admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def _server_sessions(admin: sa.Engine, database: str) -> int:
    with admin.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = :db AND application_name = :app"
                ),
                {"db": database, "app": APP_NAME},
            ).scalar_one()
        )


def _cut(admin: sa.Engine, database: str) -> int:
    """Terminate every session on ``database`` (the server's and this test's own); how many."""
    with admin.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalars()
        return sum(1 for ok in killed if ok)


def _allow_connections(admin: sa.Engine, database: str, *, allow: bool) -> None:
    with admin.connect() as conn:
        conn.execute(
            sa.text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allow).lower()}')
        )


def _wait(condition: Any, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} within {timeout}s; server log:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.05)


class Load:
    """``CLIENTS`` threads posting one row each until stopped (or ``MAX_REQUESTS`` each)."""

    def __init__(self, url: str, row: list[float]) -> None:
        self.answers: list[tuple[int, str | None, str | None]] = []  # status, worker, version
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(url, row)) for _ in range(CLIENTS)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.answers) + len(self.errors)

    def _run(self, url: str, row: list[float]) -> None:
        for _ in range(MAX_REQUESTS // RECONNECT_EVERY):
            with httpx.Client(base_url=url, timeout=10) as http:
                for _ in range(RECONNECT_EVERY):
                    if self._stop.is_set():
                        return
                    try:
                        res = http.post(INVOKE, json=row)
                    except httpx.HTTPError as exc:  # a lost request is a failure too
                        with self._lock:
                            self.errors.append(repr(exc))
                        continue
                    with self._lock:
                        self.answers.append(
                            (
                                res.status_code,
                                res.headers.get("x-modelyard-worker"),
                                res.headers.get("x-modelyard-model-version"),
                            )
                        )


def _probe(url: str, row: list[float]) -> tuple[str, str, float]:
    """One request on a new connection (so the kernel may hand it to either worker)."""
    res = httpx.post(f"{url}{INVOKE}", json=row, timeout=10)
    assert res.status_code == 200, res.text
    return (
        res.headers["x-modelyard-worker"],
        res.headers["x-modelyard-model-version"],
        float(res.json()["predictions"][0]),
    )


def _both_workers_up(server: Server, row: list[float]) -> None:
    # /ping answers once one worker is up; the load must meet both.
    seen: set[str] = set()

    def both() -> bool:
        seen.add(_probe(server.url, row)[0])
        return len(seen) == 2

    _wait(both, "both workers answering", server.log)


def _next_version(platform: Platform) -> tuple[str, str]:
    """The version ``churn-api`` serves now, and another one to change it to."""
    now = platform.endpoints.get("churn-api").config.variants[0].version
    return f"churn:{now}", f"churn:{now % 3 + 1}"


def _check_load(load: Load, version: str) -> None:
    assert not load.errors, f"{len(load.errors)} requests lost, e.g. {load.errors[:3]}"
    failed = [a for a in load.answers if a[0] != 200]
    assert not failed, f"{len(failed)} of {len(load.answers)} failed, e.g. {failed[:3]}"
    assert len(load.answers) >= 300, f"only {len(load.answers)} requests were made"
    workers = {a[1] for a in load.answers}
    assert len(workers) == 2, f"both workers answered under load: {workers}"
    assert {a[2] for a in load.answers} == {version}


def _converge(server: Server, row: list[float], models: dict[str, Any], target: str) -> None:
    """Wait until the latest answer of each of two worker pids names ``target``."""
    truth = {f"churn:{v}": float(expected(models, v, np.asarray([row]))[0]) for v in (1, 2, 3)}
    latest: dict[str, str] = {}
    wrong: list[tuple[str, str, float]] = []

    def converged() -> bool:
        # A burst of concurrent new connections, so that both workers get some.
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: _probe(server.url, row), range(4)))
        for worker, version, prediction in answers:
            latest[worker] = version
            if not np.isclose(prediction, truth[version]):
                wrong.append((worker, version, prediction))
        return len(latest) >= 2 and set(latest.values()) == {target}

    _wait(converged, f"every worker serving {target} (latest answers: {latest})", server.log)
    assert not wrong, f"answers that do not match their version: {wrong[:3]}"


def test_cut_database_sessions_fail_no_request_and_updates_still_arrive(
    outage: Outage, models: dict[str, Any]
) -> None:
    server, platform, database = outage.server, outage.platform, outage.database
    row = models["x"][7].tolist()
    before, after = _next_version(platform)
    admin = _admin()
    _both_workers_up(server, row)
    _wait(lambda: _server_sessions(admin, database) >= 2, "both workers hold a session", server.log)

    with Load(server.url, row) as load:
        _wait(lambda: load.count >= 50, "the load got going", server.log)
        for _ in range(CUTS):
            served = load.count
            assert _cut(admin, database) >= 2, "the workers' sessions were there to cut"
            # Each worker reconnects by itself on its next poll; wait for both, and for the
            # load to go on meanwhile, so every cut hits sessions that are in use.
            _wait(
                lambda n=served + 50: _server_sessions(admin, database) >= 2 and load.count >= n,
                "both workers reconnected under load",
                server.log,
            )
    _check_load(load, before)

    # The change itself goes through this process's pool, whose sessions were cut as well;
    # a last cut right after it makes the workers' first look at the new revision fail too.
    platform.endpoints.update("churn-api", {"main": after})
    _cut(admin, database)
    _converge(server, row, models, after)
    admin.dispose()


def test_a_database_refusing_connections_fails_no_request_and_updates_arrive_after(
    outage: Outage, models: dict[str, Any]
) -> None:
    server, platform, database = outage.server, outage.platform, outage.database
    row = models["x"][7].tolist()
    before, after = _next_version(platform)
    admin = _admin()
    _both_workers_up(server, row)
    start = server.log.stat().st_size

    def log_since() -> str:
        return server.log.read_bytes()[start:].decode(errors="replace")

    with Load(server.url, row) as load:
        _wait(lambda: load.count >= 50, "the load got going", server.log)
        # As during a database restart: sessions cut, and new ones refused for a while.
        _allow_connections(admin, database, allow=False)
        try:
            _cut(admin, database)
            served = load.count
            # Each worker notes the outage when a poll first fails, and requests go on being
            # answered meanwhile.
            _wait(
                lambda: log_since().count(POLL_FAILED) >= 2 and load.count >= served + 200,
                "both workers' polls failing under load",
                server.log,
            )
        finally:
            _allow_connections(admin, database, allow=True)
        # ... and notes its end when a poll gets through again.
        _wait(
            lambda: log_since().count(POLL_RECOVERED) == log_since().count(POLL_FAILED),
            "the workers' polls getting through again",
            server.log,
        )
        served = load.count
        _wait(lambda: load.count >= served + 50, "the load went on", server.log)
    _check_load(load, before)
    # An outage is a line when it starts and one when it ends, not a traceback every poll.
    assert "Traceback" not in log_since(), log_since()[-3000:]

    platform.endpoints.update("churn-api", {"main": after})
    _converge(server, row, models, after)
    admin.dispose()
