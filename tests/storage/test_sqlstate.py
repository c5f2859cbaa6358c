"""A PostgreSQL error's SQLSTATE is read whichever driver raised it: the lock-timeout and
unique-clash translations read it, and only psycopg 3's attribute was read, so under
psycopg2 (a driver the URL may name) a lock timeout read as 'cannot reach the database'."""

from __future__ import annotations

import pytest

from modelyard.storage.sql.engine import _sqlstate


class Psycopg3Error(Exception):
    sqlstate = "55P03"


class Psycopg2Error(Exception):
    pgcode = "55P03"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Psycopg3Error("canceling statement due to lock timeout"), "55P03"),
        (Psycopg2Error("canceling statement due to lock timeout"), "55P03"),
        (Exception({"S": "ERROR", "C": "23505", "M": "duplicate key"}), "23505"),  # pg8000
        (Exception("database is locked"), None),  # SQLite's: no SQLSTATE
        (Exception(), None),
    ],
)
def test_the_sqlstate_of_each_drivers_error(error: Exception, code: str | None) -> None:
    assert _sqlstate(error) == code
