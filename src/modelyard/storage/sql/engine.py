"""Engine creation and the unit of work: the one place that talks to SQLAlchemy's
transaction machinery and turns driver errors into modelyard errors."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
)

from modelyard.errors import (
    AlreadyExists,
    ConfigError,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    ModelyardError,
    StorageNotWritable,
    StorageUnavailable,
)
from modelyard.storage.urls import mask_url, redact

_WRITE = "modelyard_write"
_SQLITE_NOT_WRITABLE = (
    "readonly database",
    "read-only",
    "unable to open database file",
    "database or disk is full",
    "disk i/o error",
)


def safe_url(url: URL | str) -> str:
    """The URL as it may be shown to people: every credential in it (the password, and
    query parameters such as ``password`` or ``sslpassword``) replaced by ``***``."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparseable database URL>"
    except ValueError:  # a port that is no number: its parts were found, so mask_url finds them
        return mask_url(str(url))
    return mask_url(_full(parsed))


def _full(url: URL) -> str:
    # SQLAlchemy's own rendering escapes ``@``, ``:`` and ``/`` in the password, so mask_url
    # finds it where SQLAlchemy does.
    return url.render_as_string(hide_password=False)


# libpq connection settings (the URL's own query parameters win). A database that goes
# silent (its host gone, a partition, a firewall forgetting the connection) answers nothing:
# without these a connection waits 130 s to connect, and a query sent on an open connection
# waits for its answer until the system's keepalive notices, after two hours. Servers poll the
# store for endpoint changes from a thread, and a poll that never returns leaves a server on
# its old plan, silently. With them a silent peer is noticed in about 30 s, and the pool
# reconnects.
_PG_CONNECTION = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 4,
    "tcp_user_timeout": 30_000,  # ms: what was sent is acknowledged within it, or it gives up
}


#: The drivers that connect through libpq, and so take its connection settings.
_LIBPQ_DRIVERS = frozenset(("psycopg", "psycopg2", "psycopg2cffi"))


def libpq_settings(url: URL) -> dict[str, Any]:
    """The connection settings :data:`_PG_CONNECTION` a URL's driver is given: none for a
    driver that does not go through libpq (pg8000 refuses them), nor for a URL naming a
    ``service`` (its pg_service.conf entry decides); the URL's own parameters win, and so does
    libpq's ``PGCONNECT_TIMEOUT`` (an explicit argument would override it)."""
    if url.get_backend_name() != "postgresql" or url.get_driver_name() not in _LIBPQ_DRIVERS:
        return {}
    if "service" in url.query:
        return {}
    given = set(url.query)
    if os.environ.get("PGCONNECT_TIMEOUT"):
        given.add("connect_timeout")
    return {k: v for k, v in _PG_CONNECTION.items() if k not in given}


#: The execution option holding a PostgreSQL engine's ``busy_timeout_s``: how long a schema
#: upgrade waits for a lock another session holds (``migrate``).
BUSY_TIMEOUT_OPTION = "modelyard_busy_timeout_s"


def make_engine(url: str, *, busy_timeout_s: float = 30.0) -> Engine:
    """Create an engine for SQLite or PostgreSQL with modelyard's connection settings.

    SQLite runs in WAL mode with foreign keys on and a busy timeout; a transaction opened by
    :func:`transaction` with ``write=True`` starts with ``BEGIN IMMEDIATE`` so concurrent
    writers queue for the lock up front instead of failing on a lock upgrade. PostgreSQL
    connections give up connecting after 10 s and notice a peer gone silent in about 30 s
    (TCP keepalives and user timeout); the URL's query parameters override those settings. A
    schema upgrade on PostgreSQL waits ``busy_timeout_s`` at most for a lock another session
    holds, as SQLite's writers do.

    Raises:
        ConfigError: for a malformed URL or a driver that is not installed.
    """
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise ConfigError(f"malformed database URL {safe_url(url)!r}") from None
    except ValueError as exc:  # SQLAlchemy's int() of a port that is no number
        reason = redact(str(exc), url)
        raise ConfigError(
            f"malformed database URL {safe_url(url)!r}: the port must be a number ({reason})"
        ) from None
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = sa.create_engine(
                parsed, connect_args={"timeout": busy_timeout_s}, pool_pre_ping=False
            )
            _configure_sqlite(engine, busy_timeout_s)
        else:
            settings = libpq_settings(parsed)
            engine = sa.create_engine(
                parsed,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=10,
                connect_args=settings,
                execution_options={BUSY_TIMEOUT_OPTION: busy_timeout_s},
            )
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        reason = redact(str(exc), _full(parsed))
        raise ConfigError(f"cannot use database URL {safe_url(parsed)}: {reason}") from None
    return engine


def _configure_sqlite(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is
        # deferred and cannot be made IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        _set_wal(cur, busy_timeout_s)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _set_wal(cursor: Any, busy_timeout_s: float) -> None:
    """Put the database in WAL mode, waiting up to the busy timeout for the lock it needs.

    The mode is kept in the file, so only the first connections to a new database change it,
    and SQLite makes that change by upgrading a read lock to a write lock, which it refuses at
    once, without calling the busy handler, while another connection is making the same change
    (waiting could deadlock). Processes opening a new database together (``modelyard``
    commands on a fresh home) would fail with "database is locked": they retry instead until
    one of them has set the mode, after which the PRAGMA only reads.
    """
    deadline = time.monotonic() + busy_timeout_s
    pause_s = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, 0.05)


def _sqlstate(error: object) -> str | None:
    """A PostgreSQL driver error's SQLSTATE, whichever driver raised it: psycopg 3's
    ``sqlstate``, psycopg2's ``pgcode``, pg8000's ``args[0]["C"]``; None for others."""
    for name in ("sqlstate", "pgcode"):
        code = getattr(error, name, None)
        if isinstance(code, str):
            return code
    args = getattr(error, "args", ())
    if args and isinstance(args[0], dict) and isinstance(args[0].get("C"), str):
        return str(args[0]["C"])
    return None


def _unique_violation(exc: IntegrityError) -> bool:
    """True when ``exc`` is a unique-key clash (PostgreSQL SQLSTATE 23505, SQLite's message)."""
    if _sqlstate(exc.orig) == "23505":
        return True
    return "unique constraint failed" in str(exc.orig).lower()


#: PostgreSQL's SQLSTATE for a lock not granted within ``lock_timeout``.
_PG_LOCK_NOT_AVAILABLE = "55P03"


def translate_db_error(exc: DBAPIError, url: URL) -> ModelyardError:
    """Turn a driver error into the modelyard error a user can act on."""
    shown = safe_url(url)
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    reason = redact(reason, _full(url))
    if isinstance(exc, DataError):
        # A value the database cannot hold (PostgreSQL: a NUL in text, a number out of range).
        return InvalidInput(f"the metadata database cannot store a value given: {reason}")
    if isinstance(exc, IntegrityError):
        if _unique_violation(exc):
            # Two writers both saw a name free and inserted it (PostgreSQL runs them at once;
            # the second waits for the first, then hits the unique key): the loser gets what
            # the check-then-insert would have told it, so claim loops can go on.
            return AlreadyExists(f"it already exists (created concurrently): {reason}")
        return Conflict(f"the change conflicts with existing data: {reason}")
    if url.get_backend_name() == "sqlite":
        low = reason.lower()
        if any(marker in low for marker in _SQLITE_NOT_WRITABLE):
            return StorageNotWritable(f"cannot write the metadata database {shown}: {reason}")
        if "locked" in low or "busy" in low:
            return StorageUnavailable(f"the metadata database {shown} stayed locked: {reason}")
    if _sqlstate(exc.orig) == _PG_LOCK_NOT_AVAILABLE:  # its lock_timeout
        return StorageUnavailable(
            f"the metadata database {shown} stayed locked: another session holds a lock "
            f"this change needs ({reason})"
        )
    if exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError):
        return DatabaseUnavailable(f"cannot reach the metadata database at {shown}: {reason}")
    return StorageUnavailable(f"metadata database error at {shown}: {reason}")


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """The unit of work: one connection, one transaction, committed on success.

    Any exception rolls the transaction back. Driver errors leave as modelyard errors.
    """
    try:
        with engine.connect().execution_options(**{_WRITE: write}) as conn, conn.begin():
            yield conn
    except DBAPIError as exc:
        raise translate_db_error(exc, engine.url) from None
