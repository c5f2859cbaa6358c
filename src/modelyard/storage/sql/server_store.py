"""``SqlServerStore``: server processes' reports on SQLite or PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from modelyard.domain import ServerRecord, ServerStatus
from modelyard.storage.base import ServerRegistry
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import servers
from modelyard.storage.sql.timestamps import aware, store_clock
from modelyard.storage.sql.upsert import dialect_insert


def _record(row: Row[Any], now: datetime) -> ServerRecord:
    heartbeat_at = aware(row.heartbeat_at)
    return ServerRecord(
        status=ServerStatus(
            host=row.host,
            pid=row.pid,
            url=row.url,
            revision=int(row.revision),
            heartbeat_s=float(row.heartbeat_s),
            started_at=aware(row.started_at),
            endpoints={str(k): int(v) for k, v in dict(row.endpoints).items()},
            failures={str(k): str(v) for k, v in dict(row.failures).items()},
            predictors=dict(row.predictors or {}),
        ),
        heartbeat_at=heartbeat_at,
        silent_s=max(0.0, (now - heartbeat_at).total_seconds()),
    )


class SqlServerStore(ServerRegistry):
    """A :class:`ServerRegistry` on an engine whose schema is already migrated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def report(self, status: ServerStatus) -> None:
        with transaction(self._engine, write=True) as conn:
            values = {
                "host": status.host,
                "pid": status.pid,
                "url": status.url,
                "revision": status.revision,
                "endpoints": dict(status.endpoints),
                "failures": dict(status.failures),
                "predictors": dict(status.predictors),
                "heartbeat_s": status.heartbeat_s,
                "started_at": status.started_at,
                "heartbeat_at": store_clock(conn),
            }
            # One statement, so two reports of one server (or a pid reused after a crash)
            # never clash on the key.
            keys = {k: v for k, v in values.items() if k not in ("host", "pid")}
            upsert = dialect_insert(conn)(servers).values(**values)
            conn.execute(upsert.on_conflict_do_update(index_elements=["host", "pid"], set_=keys))

    def remove(self, host: str, pid: int) -> None:
        with transaction(self._engine, write=True) as conn:
            conn.execute(servers.delete().where(servers.c.host == host, servers.c.pid == pid))

    def list_servers(self) -> list[ServerRecord]:
        with transaction(self._engine, write=False) as conn:
            now = store_clock(conn)
            rows = conn.execute(sa.select(servers).order_by(servers.c.host, servers.c.pid)).all()
        return [_record(row, now) for row in rows]
