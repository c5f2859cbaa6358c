"""A unique-key clash from the database is ``AlreadyExists``, on both backends.

Check-then-insert leaves a window on PostgreSQL: two writers both see a name free, the second
insert waits for the first and then hits the unique key. Loops that claim a name by creating it
(trial slots of a tuning job) must see ``AlreadyExists`` there, as the check would have said;
other integrity errors stay a generic ``Conflict``.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelyard.errors import AlreadyExists, Conflict
from modelyard.storage.sql.engine import make_engine, translate_db_error


def _clash(url: str, statement: str) -> Exception:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE claims (name TEXT UNIQUE, n INTEGER NOT NULL)"))
            conn.execute(sa.text("INSERT INTO claims VALUES ('trial-000', 1)"))
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(statement))
        except sa.exc.DBAPIError as exc:
            return translate_db_error(exc, engine.url)
        raise AssertionError(f"{statement!r} did not fail")
    finally:
        engine.dispose()


def test_a_unique_clash_is_already_exists(db_url: str) -> None:
    error = _clash(db_url, "INSERT INTO claims VALUES ('trial-000', 2)")
    assert isinstance(error, AlreadyExists), error
    assert "already exists" in str(error)


def test_other_integrity_errors_stay_a_conflict(db_url: str) -> None:
    error = _clash(db_url, "INSERT INTO claims VALUES ('trial-001', NULL)")
    assert isinstance(error, Conflict) and not isinstance(error, AlreadyExists), error
