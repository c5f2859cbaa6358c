"""A PostgreSQL server that goes silent (its host gone, a partition, a firewall dropping the
connection's state) must not hang a modelyard process for ever.

A refused connection fails at once; a silent one fails only on a timeout. Servers poll the
store for endpoint changes from a thread, and a poll that never returns leaves the server on
its old plan, without a log line, until restarted. So every PostgreSQL connection modelyard
opens gives up connecting after a bounded time, and has TCP keepalives (and a TCP user timeout
on what it sends) short enough that a peer gone silent is noticed within a minute rather than
the system's two hours; the database URL's own settings of those win.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from modelyard.errors import DatabaseUnavailable
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore
from tests.waiting import wait_for


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    closing.set()
    listener.close()
    for conn in accepted:
        conn.close()


def test_opening_a_store_on_a_silent_server_fails_instead_of_hanging(silent_port: int) -> None:
    url = f"postgresql+psycopg://modelyard@127.0.0.1:{silent_port}/modelyard"
    outcome: list[BaseException] = []

    def open_store() -> None:
        try:
            SqlMetadataStore(make_engine(url))
        except BaseException as exc:
            outcome.append(exc)

    threading.Thread(target=open_store, daemon=True).start()
    wait_for("opening the store to give up on the silent server", lambda: outcome)

    assert isinstance(outcome[0], DatabaseUnavailable), outcome
    assert f"127.0.0.1:{silent_port}" in str(outcome[0])


def _tcp_options(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            sock = socket.socket(fileno=raw.pgconn.socket)  # type: ignore[attr-defined]
            try:
                return {
                    "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    "idle_s": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    "interval_s": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    "probes": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    "user_timeout_ms": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
                }
            finally:
                sock.detach()  # the connection's socket, not ours to close
    finally:
        engine.dispose()


def test_connections_notice_a_silent_peer_within_a_minute(pg_schema_url: str) -> None:
    options = _tcp_options(pg_schema_url)

    assert options["keepalive"], options
    assert options["idle_s"] + options["interval_s"] * options["probes"] <= 60, options
    assert 0 < options["user_timeout_ms"] <= 60_000, options


def test_the_database_url_overrides_those_settings(pg_schema_url: str) -> None:
    url = sa.make_url(pg_schema_url).update_query_dict(
        {"keepalives_idle": "300", "tcp_user_timeout": "0"}
    )

    options = _tcp_options(url.render_as_string(hide_password=False))

    assert (options["idle_s"], options["user_timeout_ms"]) == (300, 0), options


def test_only_libpq_drivers_get_those_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # pg8000 refuses libpq's keywords (a TypeError at the first query); a service entry and
    # PGCONNECT_TIMEOUT are libpq's own ways to set them, which explicit arguments override.
    from modelyard.storage.sql.engine import libpq_settings

    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    for url in ("postgresql://h/db", "postgresql+psycopg://h/db", "postgresql+psycopg2://h/db"):
        assert libpq_settings(sa.make_url(url))["connect_timeout"] == 10, url
    for url in ("postgresql+pg8000://h/db", "postgresql+asyncpg://h/db", "sqlite://"):
        assert libpq_settings(sa.make_url(url)) == {}, url
    assert libpq_settings(sa.make_url("postgresql+psycopg:///db?service=prod")) == {}
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "3")
    settings = libpq_settings(sa.make_url("postgresql+psycopg://h/db"))
    assert "connect_timeout" not in settings and settings["keepalives"] == 1
