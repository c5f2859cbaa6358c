"""Migrations: from an empty database to head on every backend, idempotent, one head, and the
packaged migrations describe exactly the tables the code uses."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modelyard.errors import ConfigError, DatabaseUnavailable, SchemaMismatch
from modelyard.storage.sql import migrate
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore
from modelyard.storage.sql.tables import metadata


def test_one_head() -> None:
    heads = migrate._script().get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"


def test_empty_database_migrates_to_head_and_matches_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    assert migrate.current_revision(engine) is None
    assert migrate.upgrade(engine) == migrate.head_revision()
    assert migrate.upgrade(engine) == migrate.head_revision(), "second upgrade is a no-op"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], f"tables.py and the migrations disagree: {diff}"
    engine.dispose()


def test_sqlite_pragmas(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/p.db", busy_timeout_s=7)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000
    engine.dispose()


def test_schema_from_a_newer_modelyard_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    with pytest.raises(SchemaMismatch, match="newer modelyard"):
        SqlMetadataStore(engine)
    engine.dispose()


def test_unreachable_database_names_url_without_password() -> None:
    url = "postgresql+psycopg://ann:s3cret-pw@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseUnavailable) as info:
        SqlMetadataStore(make_engine(url))
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "postgresql+psycopg://ann:***@127.0.0.1:1/nowhere" in message


@pytest.mark.parametrize("url", ["not a url", "nosuchdriver://x/y"])
def test_bad_database_url(url: str) -> None:
    with pytest.raises(ConfigError):
        make_engine(url)
