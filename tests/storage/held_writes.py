"""Racing two writers on PostgreSQL deterministically: one transaction's writes are held
uncommitted until the other writer waits for them, then committed.

PostgreSQL runs two transactions at once and shows who waits for a lock
(``pg_stat_activity``), so a test can line up the exact interleaving a race between two
processes (two CLIs, two machines) produces once in many runs. SQLite serialises writers up
front (``BEGIN IMMEDIATE``), so it has no such race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlalchemy as sa

from modelyard.storage.sql.tables import aliases, model_versions, models
from tests.waiting import wait_for

_WAITING = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


def while_held(
    url: str, hold: Callable[[sa.Connection], object], second: Callable[[], object]
) -> object:
    """Run ``second`` while the writes ``hold`` makes on its connection are uncommitted;
    commit them once ``second`` waits for them (or has ended).

    Returns:
        What ``second`` returned, or the exception it raised.
    """
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    database = str(sa.make_url(url).database)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(second())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    try:
        # The watcher reads pg_stat_activity outside any transaction: inside one, PostgreSQL
        # shows the same snapshot of it on every read.
        with (
            engine.connect() as holder,
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher,
        ):
            hold(holder)
            thread.start()
            wait_for(
                "the second writer waiting for the first's uncommitted writes",
                lambda: watcher.execute(_WAITING, {"db": database}).scalar_one() or outcome,
            )
            holder.commit()
        thread.join(timeout=60)
    finally:
        engine.dispose()
    assert len(outcome) == 1, f"the second writer did not end: {outcome}"
    return outcome[0]


def version_id(conn: sa.Connection, model: str, version: int) -> int:
    """The row id of ``model:version``."""
    return int(
        conn.execute(
            sa.select(model_versions.c.id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == model, model_versions.c.version == version)
        ).scalar_one()
    )


def insert_alias(conn: sa.Connection, model: str, alias: str, version: int) -> None:
    """Point a new ``alias`` of ``model`` at ``version``, as the store does."""
    conn.execute(
        aliases.insert().values(
            model_id=conn.execute(sa.select(models.c.id).where(models.c.name == model)).scalar(),
            alias=alias,
            version_id=version_id(conn, model, version),
            updated_at=sa.func.now(),
        )
    )


def move_alias(conn: sa.Connection, model: str, alias: str, version: int) -> None:
    """Move ``model``'s existing ``alias`` to ``version``."""
    model_id = conn.execute(sa.select(models.c.id).where(models.c.name == model)).scalar()
    conn.execute(
        aliases.update()
        .where(aliases.c.model_id == model_id, aliases.c.alias == alias)
        .values(version_id=version_id(conn, model, version), updated_at=sa.func.now())
    )


def delete_version(conn: sa.Connection, model: str, version: int) -> None:
    """Delete ``model:version``'s row, as the store does."""
    conn.execute(
        model_versions.delete().where(model_versions.c.id == version_id(conn, model, version))
    )
