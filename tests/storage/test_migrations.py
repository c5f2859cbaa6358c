"""Migrations: from an empty database to head on every backend, idempotent, one head, and the
packaged migrations describe exactly the tables the code uses. Opening a store upgrades an older
schema on SQLite only; on PostgreSQL it is refused until ``migrate.upgrade`` runs."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modelyard.errors import (
    ConfigError,
    DatabaseUnavailable,
    SchemaMismatch,
    SchemaOutdated,
    StorageNotWritable,
    StorageUnavailable,
)
from modelyard.storage.sql import migrate
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore
from modelyard.storage.sql.tables import VERSION_TABLE, metadata
from tests.conftest import downgrade_schema
from tests.waiting import DEADLINE_S


def test_one_head() -> None:
    heads = migrate._script().get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"


def test_revisions_name_every_script_in_order() -> None:
    # Opening a store compares the database with migrate.REVISIONS instead of loading Alembic.
    scripts = [rev.revision for rev in reversed(list(migrate._script().walk_revisions()))]
    assert list(migrate.REVISIONS) == scripts, "list the new revision in migrate.REVISIONS"
    assert migrate.head_revision() == migrate._script().get_current_head()


def test_empty_database_migrates_to_head_and_matches_tables(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    assert migrate.current_revision(engine) is None
    done = migrate.upgrade(engine)
    assert (done.before, done.after, done.changed) == (None, migrate.HEAD, True)
    again = migrate.upgrade(engine)
    assert (again.before, again.after, again.changed) == (migrate.HEAD, migrate.HEAD, False)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(context, metadata)
    assert diff == [], f"tables.py and the migrations disagree: {diff}"
    engine.dispose()


def test_sqlite_pragmas(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/p.db", busy_timeout_s=7)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000
    engine.dispose()


def test_schema_from_a_newer_modelyard_is_refused(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dcafe'"))
    with pytest.raises(SchemaMismatch, match="newer modelyard"):
        SqlMetadataStore(engine)
    engine.dispose()


def _state(engine: sa.Engine) -> tuple[object, ...]:
    """The schema revision, the jobs table's columns and the models' rows."""
    with engine.connect() as conn:
        columns = sorted(c["name"] for c in sa.inspect(conn).get_columns("jobs"))
        rows = conn.execute(sa.text("SELECT name, description FROM models ORDER BY name")).all()
    return migrate.current_revision(engine), columns, [tuple(r) for r in rows]


def test_an_empty_database_gets_the_schema_on_open(empty_db_url: str) -> None:
    # Nothing older can be using a database without a schema, so every backend creates it.
    engine = make_engine(empty_db_url)
    try:
        SqlMetadataStore(engine).create_model("churn")
        assert migrate.current_revision(engine) == migrate.HEAD
    finally:
        engine.dispose()


def test_sqlite_upgrades_an_older_schema_on_open(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    engine = make_engine(url)
    try:
        SqlMetadataStore(engine).create_model("churn", "kept")
        downgrade_schema(url, "0003")
        assert _state(engine)[0] == "0003"
        store = SqlMetadataStore(engine)
        revision, columns, rows = _state(engine)
        assert revision == migrate.HEAD
        assert "heartbeat_at" in columns
        assert rows == [("churn", "kept")]
        assert store.get_model("churn").description == "kept"
    finally:
        engine.dispose()


def _old_sqlite(path: Path) -> str:
    """A SQLite database an older modelyard (schema 0003) left, holding one model."""
    return _old(f"sqlite:///{path}", "0003")


def _old(url: str, revision: str) -> str:
    """The database at ``url`` as an older modelyard (schema ``revision``) left it, holding
    one model."""
    engine = make_engine(url)
    try:
        SqlMetadataStore(engine).create_model("churn", "kept")
    finally:
        engine.dispose()
    downgrade_schema(url, revision)
    return url


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return migrate.current_revision(engine)
    finally:
        engine.dispose()


def test_an_old_schema_that_cannot_be_written_says_it_needed_an_upgrade(tmp_path: Path) -> None:
    # A read command on an old home upgrades it first: when the database cannot be written
    # (a read-only file, here SQLite's read-only mode), the error says that was the write.
    path = tmp_path / "old.db"
    url = _old_sqlite(path)
    read_only = make_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with pytest.raises(StorageNotWritable) as refused:
            SqlMetadataStore(read_only)
    finally:
        read_only.dispose()
    message = str(refused.value)
    assert (
        f"upgrading the metadata database's schema from revision 0003 to {migrate.HEAD} failed"
        in message
    )
    assert "nothing was changed" in message and "readonly database" in message, message
    assert _revision(url) == "0003"


def test_an_old_schema_locked_past_the_busy_timeout_says_it_needed_an_upgrade(
    tmp_path: Path,
) -> None:
    # Another process holds the write lock (another migration, a writer that never commits).
    path = tmp_path / "old.db"
    url = _old_sqlite(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    engine = make_engine(url, busy_timeout_s=0.2)
    try:
        with pytest.raises(StorageUnavailable) as refused:
            SqlMetadataStore(engine)
    finally:
        engine.dispose()
        holder.execute("ROLLBACK")
        holder.close()
    assert type(refused.value) is StorageUnavailable  # the exit code and status stay
    message = str(refused.value)
    assert (
        f"upgrading the metadata database's schema from revision 0003 to {migrate.HEAD} failed"
        in message
    )
    assert "stayed locked" in message, message
    assert _revision(url) == "0003"
    assert SqlMetadataStore(make_engine(url)).get_model("churn").description == "kept"


def _tables(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        return {
            n: int(conn.execute(sa.text(f"SELECT count(*) FROM {n}")).scalar() or 0) for n in names
        }


@pytest.mark.parametrize("whose", ["modelyard_without_revision", "another_application"])
def test_tables_named_as_ours_without_a_revision_are_refused_unchanged(
    empty_db_url: str, whose: str
) -> None:
    # Taken for an empty database, it got "CREATE TABLE models" and the error 'cannot reach
    # the metadata database: table models already exists'.
    engine = make_engine(empty_db_url)
    try:
        if whose == "modelyard_without_revision":  # its revision record deleted
            SqlMetadataStore(engine).create_model("churn", "kept")
            with engine.begin() as conn:
                conn.execute(sa.text(f"DELETE FROM {VERSION_TABLE}"))
        else:  # MODELYARD_DB_URL pointed at another application's database
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE jobs (id INTEGER PRIMARY KEY, what TEXT)"))
                conn.execute(sa.text("INSERT INTO jobs (id, what) VALUES (1, 'theirs')"))
        before = _tables(engine)
        for opener in (lambda: SqlMetadataStore(engine), lambda: migrate.upgrade(engine)):
            with pytest.raises(SchemaMismatch) as refused:
                opener()
            message = str(refused.value)
            assert "but no modelyard schema revision" in message, message
            assert "nothing was changed" in message, message
            named = "(models, " if whose == "modelyard_without_revision" else "(jobs)"
            assert named in message, message
            assert _tables(engine) == before
    finally:
        engine.dispose()


def test_postgresql_refuses_an_older_schema_until_it_is_upgraded(
    pg_url: str, tmp_path: object
) -> None:
    from pathlib import Path

    from modelyard.bootstrap import build, serving_app, upgrade_database
    from modelyard.config import load_settings

    engine = make_engine(pg_url)
    try:
        SqlMetadataStore(engine).create_model("churn", "kept")
        downgrade_schema(pg_url, "0003")
        before = _state(engine)
        assert before[0] == "0003" and "heartbeat_at" not in before[1]
        settings = load_settings({}, home=Path(str(tmp_path)) / "home", db_url=pg_url)
        for opener in (lambda: SqlMetadataStore(engine), lambda: build(settings)):
            with pytest.raises(SchemaOutdated) as refused:
                opener()
            message = str(refused.value)
            assert "`modelyard db upgrade`" in message, message
            assert f"revision 0003, older than this modelyard's {migrate.HEAD}" in message
        with pytest.raises(SchemaOutdated):
            serving_app(settings)
        assert _state(engine) == before, "a refused open changed the database"

        done = upgrade_database(settings)
        assert (done.before, done.after, done.changed) == ("0003", migrate.HEAD, True)
        assert done.url == pg_url  # no password in the test URL to mask
        assert _state(engine)[0] == migrate.HEAD
        assert SqlMetadataStore(engine).get_model("churn").description == "kept"
        assert upgrade_database(settings).changed is False
    finally:
        engine.dispose()


def test_revision_recorded_by_modelyard_0_1_moves_to_our_own_table(empty_db_url: str) -> None:
    # modelyard 0.1 kept its revision in Alembic's default table, which Optuna's study
    # storage (in the same database) claims for itself.
    engine = make_engine(empty_db_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0003')"))
        conn.execute(sa.text("DROP INDEX ix_jobs_parent"))
        conn.execute(sa.text("DROP INDEX ix_jobs_active_claim"))  # 0015
        conn.execute(sa.text("ALTER TABLE jobs DROP COLUMN claim"))  # 0015
        conn.execute(sa.text("ALTER TABLE jobs DROP COLUMN artifact"))
        conn.execute(sa.text("ALTER TABLE jobs DROP COLUMN parent"))
        conn.execute(sa.text("ALTER TABLE jobs DROP COLUMN heartbeat_at"))
        conn.execute(sa.text("DROP TABLE servers"))  # 0006
        conn.execute(sa.text("ALTER TABLE endpoints DROP COLUMN capture_salt"))  # 0008
        conn.execute(sa.text("DROP TABLE metric_series"))  # 0009
        for table in ("leases", "monitor_schedules", "monitor_runs", "alarm_rules"):
            conn.execute(sa.text(f"DROP TABLE {table}"))  # 0010
        conn.execute(sa.text("DROP TABLE alarm_history"))  # 0010
        conn.execute(sa.text("DROP TABLE feedback"))  # 0011
        conn.execute(sa.text("DROP TABLE schedule_runs"))  # 0012
        conn.execute(sa.text("DROP TABLE schedules"))  # 0012
        for table in ("deployment_decisions", "deployment_steps", "deployments"):
            conn.execute(sa.text(f"DROP TABLE {table}"))  # 0013
    assert migrate.current_revision(engine) == "0003"
    assert migrate.upgrade(engine).after == migrate.head_revision()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 0
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == (
            migrate.head_revision()
        )
        assert "parent" in {c["name"] for c in sa.inspect(conn).get_columns("jobs")}
    engine.dispose()


def test_optuna_storage_shares_the_database(empty_db_url: str) -> None:
    import optuna

    engine = make_engine(empty_db_url)
    SqlMetadataStore(engine)
    storage = optuna.storages.RDBStorage(empty_db_url)
    study = optuna.create_study(study_name="shared", storage=storage)
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 1.0},
            distributions={"x": optuna.distributions.FloatDistribution(0, 2)},
            value=0.5,
        )
    )
    storage.remove_session()
    storage.engine.dispose()
    # Reopening ours after Optuna stamped its own revision: neither is confused.
    assert migrate.current_revision(engine) == migrate.head_revision()
    SqlMetadataStore(engine)
    again = optuna.storages.RDBStorage(empty_db_url)
    assert optuna.load_study(study_name="shared", storage=again).best_value == 0.5
    again.remove_session()
    again.engine.dispose()
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


@pytest.mark.parametrize("schema", ["newer", "older"])
def test_a_refused_schema_leaves_no_connection_open(
    pg_url: str, tmp_path: object, schema: str
) -> None:
    """build() and serving_app() dispose of their engine when the store refuses to open (on
    Python 3.13 a connection left to the garbage collector is a ResourceWarning)."""
    from pathlib import Path

    from modelyard.bootstrap import build, serving_app
    from modelyard.config import load_settings

    engine = make_engine(pg_url)
    migrate.upgrade(engine)
    if schema == "newer":
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dcafe'"))
    else:
        downgrade_schema(pg_url, "0004")
    engine.dispose()
    database = sa.make_url(pg_url).database
    admin = sa.create_engine(sa.make_url(pg_url).set(database="postgres"), poolclass=sa.NullPool)
    settings = load_settings({}, home=Path(str(tmp_path)) / "home", db_url=pg_url)
    try:
        for opener in (build, serving_app):
            with pytest.raises(SchemaMismatch) as refused:
                opener(settings)
            # A closed connection's backend exits asynchronously: wait for it, generously.
            deadline = time.monotonic() + 30
            while (left := _connections(admin, database)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert left == 0, f"{opener.__name__} left {left} connection(s) open"
            del refused  # its traceback holds the frames, and so the engine
    finally:
        admin.dispose()


def _connections(admin: sa.Engine, database: str | None) -> int:
    with admin.connect() as conn:
        query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db")
        return int(conn.execute(query, {"db": database}).scalar() or 0)


def test_a_postgresql_upgrade_behind_a_held_lock_gives_up_at_the_busy_timeout(
    pg_url: str,
) -> None:
    # A session holding a lock on a table the upgrade alters (an open transaction that read
    # jobs) kept `modelyard db upgrade` waiting for ever, silently, and PostgreSQL's lock queue
    # then held every other session's queries on that table behind it.
    _old(pg_url, "0014")
    holder = sa.create_engine(pg_url, poolclass=sa.NullPool)
    impatient = make_engine(pg_url, busy_timeout_s=0.5)
    outcome: list[BaseException | None] = []
    with holder.connect() as held:
        held.execute(sa.text("SELECT count(*) FROM jobs"))  # its transaction stays open
        upgrading = threading.Thread(target=lambda: outcome.append(_caught(impatient)))
        upgrading.start()
        upgrading.join(DEADLINE_S)
        stuck = upgrading.is_alive()
        held.rollback()
    upgrading.join(DEADLINE_S)
    impatient.dispose()
    holder.dispose()
    assert not stuck, "the upgrade was still waiting for the lock"
    (refused,) = outcome
    outcome.clear()  # its traceback holds the upgrade's frames, and so a connection
    assert type(refused) is StorageUnavailable, refused  # the database is there: no outage
    message = str(refused)
    assert f"from revision 0014 to {migrate.HEAD} failed (nothing was changed)" in message
    assert "stayed locked: another session holds a lock this change needs" in message, message
    assert _revision(pg_url) == "0014"
    engine = make_engine(pg_url)
    try:
        migrate.upgrade(engine)  # once the lock is gone it goes through
    finally:
        engine.dispose()
    assert _revision(pg_url) == migrate.HEAD


def _caught(engine: sa.Engine) -> BaseException | None:
    try:
        migrate.upgrade(engine)
    except BaseException as exc:
        return exc
    return None
