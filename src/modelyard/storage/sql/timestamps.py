"""UTC timestamps in and out of the database."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def utcnow() -> datetime:
    """Now, timezone-aware UTC: everything modelyard writes is UTC."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were written as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def store_clock(conn: Connection) -> datetime:
    """The store's clock. On PostgreSQL, the database server's: processes on many machines
    write heartbeats that yet another machine compares, and only the database's clock is
    shared by all of them. A SQLite file lives on one machine, whose clock is this one."""
    if conn.dialect.name == "postgresql":
        return aware(conn.execute(sa.select(sa.func.now())).scalar_one())
    return utcnow()
