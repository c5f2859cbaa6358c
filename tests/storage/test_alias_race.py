"""Two writers pointing one new alias at the same moment, on PostgreSQL.

Setting an alias points it or moves it: of two ``modelyard models alias churn production N``
run together (two machines), both succeed and the later one's version is where the alias
points. PostgreSQL runs the two transactions at once, so neither sees the other's row until it
commits: a write that inserts the alias only when an update found none would clash with the
other's insert on the alias key and fail with ``AlreadyExists``, for a command that creates
nothing. The test holds the first writer's row uncommitted until the second waits for it
(PostgreSQL shows who waits for a lock; SQLite serialises writers up front, so has no race).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from modelyard.domain import ModelRef
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore
from modelyard.storage.sql.tables import aliases, model_versions, models
from tests.storage.test_metadata_contract import new
from tests.waiting import wait_for


@pytest.fixture
def store(pg_schema_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(make_engine(pg_schema_url))
    for _ in range(2):
        s.create_version(new())
    yield s
    s.close()


def _waiting_for_a_lock(watcher: sa.Connection, database: str) -> int:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    return int(watcher.execute(query, {"db": database}).scalar_one())


def _ids(conn: sa.Connection) -> tuple[int, int]:
    model_id = conn.execute(sa.select(models.c.id).where(models.c.name == "churn")).scalar_one()
    version_id = conn.execute(
        sa.select(model_versions.c.id).where(
            model_versions.c.model_id == model_id, model_versions.c.version == 1
        )
    ).scalar_one()
    return model_id, version_id


def _run_alone(pg_schema_url: str, second: Callable[[], object]) -> list[object]:
    """Run ``second`` (a callable) while another transaction holds a new ``production`` alias
    on version 1, uncommitted; commit it once ``second`` waits for it; return what ``second``
    returned or raised."""
    engine = sa.create_engine(pg_schema_url, poolclass=sa.NullPool)
    database = str(sa.make_url(pg_schema_url).database)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(second())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    try:
        with (
            engine.connect() as first,
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher,
        ):
            model_id, version_id = _ids(first)
            first.execute(
                aliases.insert().values(
                    model_id=model_id,
                    alias="production",
                    version_id=version_id,
                    updated_at=sa.func.now(),
                )
            )
            thread.start()
            wait_for(
                "the second writer waiting for the first's alias row",
                lambda: _waiting_for_a_lock(watcher, database) or outcome,
            )
            first.commit()
        thread.join(timeout=60)
    finally:
        engine.dispose()
    return outcome


def test_two_writers_setting_a_new_alias_both_succeed(
    store: SqlMetadataStore, pg_schema_url: str
) -> None:
    outcome = _run_alone(pg_schema_url, lambda: store.set_alias("churn", "production", 2))

    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert store.get_model("churn").aliases == {"production": 2}, "the later writer's version"


def test_registering_with_a_new_alias_while_it_is_set_succeeds(
    store: SqlMetadataStore, pg_schema_url: str
) -> None:
    outcome = _run_alone(pg_schema_url, lambda: store.create_version(new(aliases=("production",))))

    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert store.get_version(ModelRef("churn", alias="production")).version == 3
