"""Alembic migrations shipped in the package, applied when a store is opened."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from modelyard.errors import SchemaMismatch
from modelyard.storage.sql.engine import safe_url, transaction
from modelyard.storage.sql.tables import LEGACY_VERSION_TABLE, VERSION_TABLE

_SCRIPTS = Path(__file__).parent / "migrations"
# Arbitrary constant: the advisory lock that serialises concurrent upgrades on PostgreSQL.
_PG_LOCK_KEY = 0x6D6F64656C  # "model"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migration scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return cfg


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _script().get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


def _context(conn: sa.Connection) -> MigrationContext:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with transaction(engine, write=False) as conn:
        revision = _context(conn).get_current_revision()
        return revision if revision is not None else _legacy_revision(conn)


def _legacy_revision(conn: sa.Connection) -> str | None:
    """Our revision as modelyard 0.1 recorded it, in Alembic's default table (now Optuna's)."""
    if not sa.inspect(conn).has_table(LEGACY_VERSION_TABLE):
        return None
    ours = {rev.revision for rev in _script().walk_revisions()}
    rows = conn.execute(sa.text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}")).scalars()
    found = [r for r in rows if r in ours]
    return found[0] if found else None


def _move_legacy_revision(conn: sa.Connection) -> None:
    """Move a 0.1-era revision into our own version table and hand the default one back."""
    legacy = _legacy_revision(conn)
    if legacy is None or _context(conn).get_current_revision() is not None:
        return
    context = _context(conn)
    context.stamp(_script(), legacy)
    conn.execute(
        sa.text(f"DELETE FROM {LEGACY_VERSION_TABLE} WHERE version_num = :v"), {"v": legacy}
    )


def upgrade(engine: Engine) -> str:
    """Bring the schema to the head revision; safe to call from many processes at once.

    Returns:
        The revision the database is at afterwards.

    Raises:
        SchemaMismatch: when the database was migrated by a newer modelyard.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    _check_known(current, engine)
    with transaction(engine, write=True) as conn:  # BEGIN IMMEDIATE on SQLite
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        _move_legacy_revision(conn)
        # Another process may have finished the upgrade while we waited for the lock.
        if _context(conn).get_current_revision() != head:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    return head


def _check_known(revision: str | None, engine: Engine) -> None:
    if revision is None:
        return
    known = {rev.revision for rev in _script().walk_revisions()}
    if revision not in known:
        raise SchemaMismatch(
            f"the metadata database {safe_url(engine.url)} is at schema revision {revision}, "
            "which this modelyard does not know: it was written by a newer modelyard; upgrade "
            "modelyard (pip install -U modelyard)"
        )
