"""Shared fixtures: a metadata database on every backend (SQLite file, real PostgreSQL).

PostgreSQL comes from ``MODELYARD_TEST_PG_URL`` (default: the local server on 127.0.0.1:5432,
database ``test``). Each test gets a fresh database, dropped afterwards. Without a server the
PostgreSQL cases skip locally, but under ``CI=true`` they fail, and a CI run that skipped any
PostgreSQL case fails as a whole.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

# The property-based tests (issue 14's fuzzing layer) run on a fixed example budget. In CI the
# examples are derived from each test's name (derandomize), so a run is repeatable and bounded
# in time; a counter-example found anywhere is committed as a plain regression test.
# Locally, HYPOTHESIS_PROFILE=dev searches with fresh random examples and keeps a database.
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "dev", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PG_ADMIN_URL = os.environ.get(
    "MODELYARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
_skipped_pg: list[str] = []


def _pg_admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


@pytest.fixture(scope="session")
def pg_available() -> bool:
    try:
        with _pg_admin().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {exc}")
        return False


@contextmanager
def _fresh_pg_database(template: str | None = None) -> Iterator[str]:
    """A new database, empty or a copy of ``template`` (a database nobody is connected to)."""
    name = f"modelyard_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    copy = f' TEMPLATE "{template}"' if template is not None else ""
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{copy}'))
    url = sa.make_url(PG_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable at " + PG_ADMIN_URL)
    with _fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_schema_template(pg_available: bool) -> Iterator[str]:
    """A database at the head schema revision, made once per test process, that
    :func:`pg_schema_url` copies: ``CREATE DATABASE … TEMPLATE`` takes a tenth of the time the
    migrations take (0.06 s against 0.3 s here), and some 370 tests open a PostgreSQL store.
    The migrations themselves are tested on empty databases (``pg_url``)."""
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable at " + PG_ADMIN_URL)
    from modelyard.storage.sql import migrate
    from modelyard.storage.sql.engine import make_engine

    with _fresh_pg_database() as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()  # a template must have no connection open while it is copied
        yield str(sa.make_url(url).database)


@pytest.fixture
def pg_schema_url(pg_schema_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, at the head schema revision: what a store
    opened on an empty database would make of it before its first write."""
    with _fresh_pg_database(pg_schema_template) as url:
        yield url


@contextmanager
def module_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """For a fixture parametrized ``["sqlite", "postgresql"]`` of wider than test scope (the
    property-based tests run many examples on one store): an empty database URL."""
    if request.param == "sqlite":
        folder = request.getfixturevalue("tmp_path_factory").mktemp("db")
        yield f"sqlite:///{folder / 'modelyard.db'}"
        return
    if not request.getfixturevalue("pg_available"):
        pytest.skip("PostgreSQL is not reachable at " + PG_ADMIN_URL)
    with _fresh_pg_database() as url:
        yield url


def downgrade_schema(url: str, revision: str) -> None:
    """Take the modelyard schema of the database at ``url`` back to the older ``revision`` with
    the packaged downgrade scripts, data kept: the database an older modelyard left."""
    from alembic import command

    from modelyard.storage.sql import migrate
    from modelyard.storage.sql.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = migrate.alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An EMPTY database URL on each backend: for the tests of getting the schema there (the
    migrations, and processes racing on them)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'modelyard.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each backend: an empty SQLite file, a PostgreSQL database at the
    head schema revision (the migrations are tested on empty ones, ``pg_url``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'modelyard.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgresql" in report.nodeid:
        _skipped_pg.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _skipped_pg:
        print(
            f"\nCI=true but {len(_skipped_pg)} PostgreSQL test(s) were skipped: {_skipped_pg[:5]}"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def breast_cancer() -> tuple[object, object, object, object]:
    """Train/test split of scikit-learn's bundled breast-cancer set, as DataFrames/Series."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer(as_frame=True)
    features = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    return tuple(train_test_split(features, data.target, test_size=0.25, random_state=7))
