"""The metadata schema: the check every store makes when it opens, and the upgrade (Alembic
migrations shipped in the package).

Opening a store (:func:`ensure_current`) costs one query when the schema is current, and never
loads Alembic then: this code's revisions are listed in :data:`REVISIONS` (a test checks them
against the scripts). When the schema is not current:

- an empty database is created at the head revision, on every backend: nothing older can be
  using a database that has no schema yet;
- an older schema is upgraded on SQLite, the embedded store of one home, and refused on any
  other backend with :class:`SchemaOutdated`: on a database shared by many processes, a newer
  one must not change the schema under older ones that are running. :func:`upgrade`
  (``modelyard db upgrade``) does it on purpose;
- a newer schema (a revision this code does not know) is refused everywhere
  (:class:`SchemaMismatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelyard.errors import SchemaMismatch, SchemaOutdated, StorageUnavailable
from modelyard.storage.sql.engine import BUSY_TIMEOUT_OPTION, safe_url, transaction
from modelyard.storage.sql.tables import LEGACY_VERSION_TABLE, VERSION_TABLE, metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

_SCRIPTS = Path(__file__).parent / "migrations"
# Arbitrary constant: the advisory lock that serialises concurrent upgrades on PostgreSQL.
_PG_LOCK_KEY = 0x6D6F64656C  # "model"

#: Every revision in ``migrations/versions``, oldest first; add a new one here with its script.
REVISIONS: tuple[str, ...] = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
    "0012",
    "0013",
    "0014",
    "0015",
    "0016",
)
HEAD = REVISIONS[-1]


@dataclass(frozen=True)
class SchemaUpgrade:
    """What :func:`upgrade` found and left.

    Attributes:
        url: The database, every credential masked.
        before: Its revision before (None: it had no schema).
        after: Its revision now (the head revision).
    """

    url: str
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        """Whether the upgrade changed the schema."""
        return self.before != self.after


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migration scripts."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return cfg


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    return HEAD


def _context(conn: sa.Connection) -> MigrationContext:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for a database without our schema).

    Raises:
        DatabaseUnavailable, StorageUnavailable: the database cannot be read.
    """
    with transaction(engine, write=False) as conn:
        return _read_revision(conn)


def _read_revision(conn: sa.Connection) -> str | None:
    if sa.inspect(conn).has_table(VERSION_TABLE):
        query = sa.text(f"SELECT version_num FROM {VERSION_TABLE}")
        found = conn.execute(query).scalars().first()
        if found is not None:
            return str(found)
    return _legacy_revision(conn)


def _legacy_revision(conn: sa.Connection) -> str | None:
    """Our revision as modelyard 0.1 recorded it, in Alembic's default table (now Optuna's)."""
    if not sa.inspect(conn).has_table(LEGACY_VERSION_TABLE):
        return None
    rows = conn.execute(sa.text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}")).scalars()
    found = [r for r in rows if r in REVISIONS]
    return found[0] if found else None


def _move_legacy_revision(conn: sa.Connection) -> None:
    """Move a 0.1-era revision into our own version table and hand the default one back."""
    legacy = _legacy_revision(conn)
    if legacy is None or _context(conn).get_current_revision() is not None:
        return
    _context(conn).stamp(_script(), legacy)
    conn.execute(
        sa.text(f"DELETE FROM {LEGACY_VERSION_TABLE} WHERE version_num = :v"), {"v": legacy}
    )


def ensure_current(engine: Engine) -> None:
    """Make the schema usable by this code, or refuse it (see the module docstring).

    Raises:
        SchemaOutdated: an older schema on a backend other than SQLite.
        SchemaMismatch: the database was migrated by a newer modelyard.
        DatabaseUnavailable, StorageUnavailable: the database cannot be read or written.
    """
    if current_revision(engine) == HEAD:
        return
    _upgrade(engine, outdated_ok=engine.dialect.name == "sqlite")


def upgrade(engine: Engine) -> SchemaUpgrade:
    """Bring the schema to the head revision; safe to call from many processes at once.

    Returns:
        The revision before and after (the same when it was current).

    Raises:
        SchemaMismatch: the database was migrated by a newer modelyard.
        DatabaseUnavailable, StorageUnavailable: the database cannot be read or written.
    """
    return _upgrade(engine, outdated_ok=True)


def _upgrade(engine: Engine, *, outdated_ok: bool) -> SchemaUpgrade:
    url = safe_url(engine.url)
    before = current_revision(engine)
    _check(before, url, outdated_ok=outdated_ok)
    if before == HEAD:
        return SchemaUpgrade(url, before, HEAD)
    from alembic import command

    try:
        with transaction(engine, write=True) as conn:  # BEGIN IMMEDIATE on SQLite
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                # Altering a table waits for every session that holds a lock on it (an open
                # transaction that read it), and PostgreSQL queues every later query on that
                # table behind the wait: without a bound, an upgrade waited for ever, silently,
                # and stalled the fleet's queries meanwhile.
                wait_s = float(engine.get_execution_options().get(BUSY_TIMEOUT_OPTION, 30.0))
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{max(1, int(wait_s * 1000))}ms'"))
            # Another process may have created or upgraded the schema while we waited.
            before = _read_revision(conn)
            _check(before, url, outdated_ok=outdated_ok)
            if before is None:
                _refuse_tables_without_revision(conn, url)
            if before != HEAD:
                _move_legacy_revision(conn)
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
    except SchemaMismatch:
        raise
    except StorageUnavailable as exc:
        # A read command on an older SQLite home writes to upgrade it first: a read-only
        # file or a lock held past the busy timeout must say that this was the write.
        raise type(exc)(f"{_what_failed(before)} failed (nothing was changed): {exc}") from None
    return SchemaUpgrade(url, before, HEAD)


def _refuse_tables_without_revision(conn: sa.Connection, url: str) -> None:
    """A database without our revision gets our schema, unless it holds tables named as ours:
    another application's database (MODELYARD_DB_URL pointed at the wrong one), or ours with
    its revision record removed. Creating the schema there failed on the first clash."""
    present = set(sa.inspect(conn).get_table_names())
    found = [name for name in metadata.tables if name in present]  # models first
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise SchemaMismatch(
            f"the metadata database {url} has tables named as modelyard's ({shown}) but no "
            "modelyard schema revision: it is another application's database, or modelyard's "
            "with its revision record removed; nothing was changed (point MODELYARD_DB_URL or "
            "MODELYARD_HOME at modelyard's own database)"
        )


def _what_failed(before: str | None) -> str:
    if before is None:
        return f"creating the metadata database's schema (revision {HEAD})"
    return f"upgrading the metadata database's schema from revision {before} to {HEAD}"


def _check(revision: str | None, url: str, *, outdated_ok: bool) -> None:
    if revision is None or revision == HEAD:
        return
    if revision not in REVISIONS:
        raise SchemaMismatch(
            f"the metadata database {url} is at schema revision {revision}, "
            "which this modelyard does not know: it was written by a newer modelyard; upgrade "
            "modelyard (pip install -U modelyard)"
        )
    if not outdated_ok:
        raise SchemaOutdated(
            f"the metadata database {url} is at schema revision {revision}, older than this "
            f"modelyard's {HEAD}: upgrade it with `modelyard db upgrade` (a shared database is "
            "never upgraded by the processes that open it)"
        )
