"""``SqlLeaseStore``: leases on SQLite or PostgreSQL (the contract: ``storage/leases.py``).

How exactly one contender wins, on each backend:

- a new tick is taken by INSERT: the primary key ``(name, tick)`` lets one row in. On SQLite a
  write transaction starts with ``BEGIN IMMEDIATE``, so contenders run one after the other and
  the second sees the first's row. On PostgreSQL both may see no row; the second INSERT waits
  for the first to commit and then hits the key, which the unit of work turns into
  ``AlreadyExists``: that contender lost.
- an expired lease is taken over by a conditional UPDATE (``WHERE done_at IS NULL AND
  expires_at < now``). On PostgreSQL a second UPDATE waits for the first's row lock and then
  re-checks its WHERE against the new row, whose expiry is in the future: no row changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from modelyard.errors import AlreadyExists, InvalidInput
from modelyard.storage.leases import Lease, LeaseStore
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import leases
from modelyard.storage.sql.timestamps import aware, store_clock


def _utc(value: datetime) -> datetime:
    # SQLite keeps datetimes as text without their zone: every tick is written in UTC so
    # equal instants are equal strings and order as text.
    if value.tzinfo is None:
        raise InvalidInput(f"a lease tick must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)


def _key(name: str, tick: datetime) -> Any:
    return sa.and_(leases.c.name == name, leases.c.tick == _utc(tick))


def _lease(row: Row[Any]) -> Lease:
    return Lease(
        name=row.name,
        tick=aware(row.tick),
        holder=row.holder,
        taken_at=aware(row.taken_at),
        expires_at=aware(row.expires_at),
        done_at=aware(row.done_at) if row.done_at is not None else None,
        attempts=int(row.attempts),
    )


class SqlLeaseStore(LeaseStore):
    """A :class:`LeaseStore` on an engine whose schema is already migrated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acquire(self, name: str, tick: datetime, holder: str, ttl: timedelta) -> bool:
        tick = _utc(tick)
        try:
            with transaction(self._engine, write=True) as conn:
                return self._acquire(conn, name, tick, holder, ttl)
        except AlreadyExists:
            return False  # PostgreSQL: another contender inserted the row first

    def _acquire(
        self, conn: Connection, name: str, tick: datetime, holder: str, ttl: timedelta
    ) -> bool:
        now = store_clock(conn)
        newest = conn.execute(
            sa.select(sa.func.max(leases.c.tick)).where(leases.c.name == name)
        ).scalar_one_or_none()
        if newest is not None and aware(newest) > tick:
            return False
        row = conn.execute(sa.select(leases).where(_key(name, tick))).first()
        if row is None:
            conn.execute(
                leases.insert().values(
                    name=name,
                    tick=tick,
                    holder=holder,
                    taken_at=now,
                    expires_at=now + ttl,
                    attempts=1,
                )
            )
            return True
        taken = conn.execute(
            leases.update()
            .where(_key(name, tick), leases.c.done_at.is_(None), leases.c.expires_at < now)
            .values(
                holder=holder,
                taken_at=now,
                expires_at=now + ttl,
                attempts=leases.c.attempts + 1,
            )
        ).rowcount
        return bool(taken)

    def renew(self, name: str, tick: datetime, holder: str, ttl: timedelta) -> bool:
        with transaction(self._engine, write=True) as conn:
            now = store_clock(conn)
            return bool(
                conn.execute(
                    leases.update()
                    .where(_key(name, tick), leases.c.holder == holder, leases.c.done_at.is_(None))
                    .values(expires_at=now + ttl)
                ).rowcount
            )

    def finish(self, name: str, tick: datetime, holder: str) -> bool:
        with transaction(self._engine, write=True) as conn:
            now = store_clock(conn)
            return bool(
                conn.execute(
                    leases.update()
                    .where(_key(name, tick), leases.c.holder == holder, leases.c.done_at.is_(None))
                    .values(done_at=now)
                ).rowcount
            )

    def get(self, name: str, tick: datetime) -> Lease | None:
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(sa.select(leases).where(_key(name, tick))).first()
        return _lease(row) if row is not None else None

    def prune(self, before: datetime) -> int:
        newer = sa.alias(leases, "newer")
        has_newer = (
            sa.select(newer.c.tick)
            .where(newer.c.name == leases.c.name, newer.c.tick > leases.c.tick)
            .exists()
        )
        with transaction(self._engine, write=True) as conn:
            now = store_clock(conn)
            return int(
                conn.execute(
                    leases.delete().where(
                        leases.c.tick < _utc(before),
                        sa.or_(leases.c.done_at.is_not(None), leases.c.expires_at < now),
                        has_newer,
                    )
                ).rowcount
            )
