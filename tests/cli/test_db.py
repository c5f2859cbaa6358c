"""``modelyard db upgrade``, and read commands on a database whose schema is older than the code:
upgraded on open on SQLite, refused on PostgreSQL (naming the command) until upgraded."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from modelyard.storage.sql import migrate
from tests.cli.conftest import Cli
from tests.conftest import downgrade_schema


def _model(cli: Cli, db_url: str) -> None:
    """A store at the head revision holding one model (made in-process: no subprocess)."""
    from modelyard.bootstrap import build
    from modelyard.config import load_settings

    platform = build(load_settings(environ={}, home=cli.home, db_url=db_url))
    try:
        platform.registry.create_model("churn", "kept across upgrades")
    finally:
        platform.close()


def _state(db_url: str) -> tuple[object, ...]:
    """The schema revision, the jobs table's columns and every model row."""
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            columns = sorted(c["name"] for c in sa.inspect(conn).get_columns("jobs"))
            rows = conn.execute(sa.text("SELECT * FROM models ORDER BY name")).all()
            revision = conn.execute(
                sa.text("SELECT version_num FROM modelyard_schema_version")
            ).scalar()
        return revision, columns, [tuple(r) for r in rows]
    finally:
        engine.dispose()


def test_sqlite_upgrades_an_older_schema_itself(cli: Cli) -> None:
    url = f"sqlite:///{cli.home / 'modelyard.db'}"
    _model(cli, url)
    downgrade_schema(url, "0003")
    listed = cli("models", "list", "--json").ok().json()
    assert [m["name"] for m in listed] == ["churn"]
    assert _state(url)[0] == migrate.HEAD
    current = cli("db", "upgrade").ok()
    assert current.out.strip() == (
        f"The metadata database {url} is already current (schema revision {migrate.HEAD})."
    )


def test_postgresql_older_schema_is_refused_until_db_upgrade(cli: Cli, pg_url: str) -> None:
    env = cli.env(MODELYARD_DB_URL=pg_url)
    _model(cli, pg_url)
    downgrade_schema(pg_url, "0003")
    before = _state(pg_url)
    assert before[0] == "0003"

    for args in (("models", "list"), ("endpoints", "list", "--json"), ("store", "info")):
        refused = cli(*args, env=env)
        line = refused.error_line(6)
        assert "`modelyard db upgrade`" in line, line
        assert f"schema revision 0003, older than this modelyard's {migrate.HEAD}" in line, line
    assert _state(pg_url) == before, "a refused command changed the database"

    upgraded = cli("db", "upgrade", env=env).ok()
    assert upgraded.out.strip() == (
        f"Upgraded the metadata database {pg_url} from schema revision 0003 to {migrate.HEAD}."
    )
    after = _state(pg_url)
    assert after[0] == migrate.HEAD and "heartbeat_at" in after[1]
    assert after[2] == before[2], "the upgrade lost or changed data"
    listed = cli("models", "list", "--json", env=env).ok().json()
    assert [(m["name"], m["description"]) for m in listed] == [("churn", "kept across upgrades")]

    again = cli("db", "upgrade", "--json", env=env).ok().json()
    assert again == {"url": pg_url, "from": migrate.HEAD, "to": migrate.HEAD, "changed": False}


def test_db_upgrade_creates_the_schema_of_an_empty_database(cli: Cli, pg_url: str) -> None:
    created = cli("db", "upgrade", env=cli.env(MODELYARD_DB_URL=pg_url)).ok()
    assert created.out.strip() == (
        f"Created the schema in the metadata database {pg_url} at revision {migrate.HEAD}."
    )
    assert _state(pg_url)[:1] == (migrate.HEAD,)


def test_db_upgrade_refuses_a_newer_schema(cli: Cli, pg_url: str) -> None:
    _model(cli, pg_url)
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE modelyard_schema_version SET version_num = 'f00dcafe'"))
    engine.dispose()
    line = cli("db", "upgrade", env=cli.env(MODELYARD_DB_URL=pg_url)).error_line(6)
    assert "revision f00dcafe" in line and "newer modelyard" in line, line
    assert _state(pg_url)[0] == "f00dcafe"


def test_db_upgrade_with_a_bad_database_url(cli: Cli, tmp_path: Path) -> None:
    malformed = cli("db", "upgrade", env=cli.env(MODELYARD_DB_URL="not a url")).error_line(2)
    assert "malformed database URL" in malformed, malformed
    unknown = cli("db", "upgrade", env=cli.env(MODELYARD_DB_URL="nosuchdb://x/y")).error_line(2)
    assert "nosuchdb://x/y" in unknown, unknown
    nobody = "postgresql+psycopg://ann:s3cret-pw@127.0.0.1:1/nowhere"
    unreachable = cli("db", "upgrade", env=cli.env(MODELYARD_DB_URL=nobody)).error_line(6)
    assert "cannot reach the metadata database" in unreachable, unreachable
    assert "postgresql+psycopg://ann:***@127.0.0.1:1/nowhere" in unreachable, unreachable
    assert "s3cret-pw" not in unreachable
