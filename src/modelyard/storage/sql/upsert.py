"""The dialect's INSERT, which has ``ON CONFLICT`` (``on_conflict_do_update`` /
``do_nothing``): the one place stores get it for an upsert, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection


def dialect_insert(conn: Connection) -> Any:
    """``sqlalchemy.dialects.<postgresql|sqlite>.insert`` for ``conn``'s database.

    Imported on use, as the engine imports only its own dialect (PostgreSQL's costs a tenth of
    a second, on every command).
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert
