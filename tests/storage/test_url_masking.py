"""Credentials in store URLs never reach a message or a log line: the userinfo password and
secret query parameters (``password``, ``sslpassword``, ``token`` …) of the metadata database
URL and of the artifact store URL, on every error path that formats one."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelyard.errors import (
    ConfigError,
    DatabaseUnavailable,
    ModelyardError,
    SchemaMismatch,
    StorageUnavailable,
)
from modelyard.storage.artifacts import FsspecArtifactStore
from modelyard.storage.sql import migrate
from modelyard.storage.sql.engine import make_engine, safe_url
from modelyard.storage.sql.store import SqlMetadataStore
from modelyard.storage.sql.tables import VERSION_TABLE
from modelyard.storage.urls import mask_url, redact

SECRET = "S3cret-Pw"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"postgresql+psycopg://postgres:{SECRET}@host:5432/x?password={SECRET}",
            "postgresql+psycopg://postgres:***@host:5432/x?password=***",
        ),
        (
            f"postgresql+psycopg://ann@host/db?sslmode=require&sslpassword={SECRET}&pwd={SECRET}",
            "postgresql+psycopg://ann@host/db?sslmode=require&sslpassword=***&pwd=***",
        ),
        (f"s3://AKIAKEY:{SECRET}@bucket/dir", "s3://AKIAKEY:***@bucket/dir"),
        # found in review: a ";" inside a value showed what followed it
        (
            f"postgresql://ann@host/db?sslpassword=x;{SECRET}",
            "postgresql://ann@host/db?sslpassword=***",
        ),
        (
            f"postgresql://ann@host/db?a=1;password={SECRET}&b=2",
            "postgresql://ann@host/db?a=***&b=2",
        ),
        (
            f"https://host/blobs?token={SECRET}&access_key=A&secret_key=B&region=eu",
            "https://host/blobs?token=***&access_key=***&secret_key=***&region=eu",
        ),
        # A raw "@", "/" or "?" in a password: SQLAlchemy and urllib split these differently;
        # neither reading may show a piece of it.
        (f"postgresql://ann:p@{SECRET}@host/db", "postgresql://ann:***@host/db"),
        (f"postgresql://ann:p/{SECRET}@host/db", "postgresql://ann:***@host/db"),
        (f"postgresql://ann:p?{SECRET}@host/db", "postgresql://ann:***@host/db"),
        (f"ftp://ann@corp:{SECRET}@host/x", "ftp://ann@corp:***@host/x"),
        # Nothing secret: shown unchanged.
        ("postgresql://host:5432/db?sslmode=require", "postgresql://host:5432/db?sslmode=require"),
        ("postgresql://[::1]:5432/db", "postgresql://[::1]:5432/db"),
        ("sqlite:////var/lib/modelyard.db", "sqlite:////var/lib/modelyard.db"),
        ("/srv/artifacts", "/srv/artifacts"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_safe_url_masks_what_sqlalchemy_reads_as_credentials() -> None:
    url = sa.make_url("postgresql+psycopg://ann@host/db").set(
        password=f"{SECRET}@:/?", query={"password": SECRET, "sslpassword": SECRET}
    )
    assert safe_url(url) == "postgresql+psycopg://ann:***@host/db?password=***&sslpassword=***"


def test_redact_removes_every_form_of_the_secrets() -> None:
    url = f"postgresql://ann:{SECRET}%21@host/db?token=a%2Bb&sslpassword=c+d"
    text = f"auth failed for {SECRET}! with a+b and a%2Bb and c d and c+d; host kept"
    assert redact(text, url) == "auth failed for *** with *** and *** and *** and ***; host kept"


def assert_hidden(error: ModelyardError, caplog: pytest.LogCaptureFixture) -> None:
    assert SECRET not in str(error), str(error)
    assert SECRET not in repr(error.args), error.args
    assert SECRET not in caplog.text, caplog.text


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(f"ann:{SECRET}@", id="userinfo"),
        pytest.param("ann@", id="query"),
    ],
)
def test_unreachable_database_shows_no_password(
    credentials: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    url = (
        f"postgresql+psycopg://{credentials}127.0.0.1:{port}/nowhere"
        f"?password={SECRET}&sslpassword={SECRET}"
    )
    with pytest.raises(DatabaseUnavailable) as info:
        SqlMetadataStore(make_engine(url))
    assert_hidden(info.value, caplog)
    assert f"127.0.0.1:{port}/nowhere?password=***&sslpassword=***" in str(info.value)


def test_unusable_driver_shows_no_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql+nosuchdriver://ann:{SECRET}@127.0.0.1/db?password={SECRET}"
    with pytest.raises(ConfigError) as info:
        make_engine(url)
    assert_hidden(info.value, caplog)
    assert "postgresql+nosuchdriver://ann:***@127.0.0.1/db?password=***" in str(info.value)


@pytest.mark.parametrize(
    ("url", "shown", "why"),
    [
        (
            f"postgresql+psycopg://ann:{SECRET}@host:54x32/db",
            "postgresql+psycopg://ann:***@host:54x32/db",
            "invalid literal for int() with base 10: '54x32'",
        ),
        (
            f"postgresql+psycopg://ann:{SECRET}@[::1/db?password={SECRET}",
            "postgresql+psycopg://ann:***@[::1/db?password=***",
            "invalid literal for int() with base 10: ':1'",
        ),
    ],
)
def test_a_url_sqlalchemy_cannot_parse_is_refused_showing_no_password(
    url: str, shown: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A port that is no number is a ValueError in SQLAlchemy's parser, not its ArgumentError:
    # make_engine let it through, and every command ended with a traceback (exit 1).
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as info:
        make_engine(url)
    assert_hidden(info.value, caplog)
    assert str(info.value) == (
        f"malformed database URL {shown!r}: the port must be a number ({why})"
    )
    assert SECRET not in safe_url(url)


def with_secrets(pg_url: str) -> str:
    # The test server trusts local connections, so any password is accepted.
    url = sa.make_url(pg_url).set(
        password=SECRET, query={"password": SECRET, "sslpassword": SECRET}
    )
    return url.render_as_string(hide_password=False)


def test_newer_schema_and_describe_show_no_password(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = make_engine(with_secrets(pg_url))
    try:
        described = SqlMetadataStore(engine).describe()
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dcafe'"))
        with pytest.raises(SchemaMismatch) as info:
            migrate.upgrade(engine)
    finally:
        engine.dispose()
    assert SECRET not in str(described) and "password=***" in described["url"], described
    assert_hidden(info.value, caplog)
    assert ":***@127.0.0.1:5432/" in str(info.value), str(info.value)


def test_artifact_store_errors_show_no_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # INFO, not DEBUG: fsspec's own debug log names every path it opens (off by default).
    caplog.set_level(logging.INFO)
    # A file where the store's folder should be: the filesystem's own error quotes the path,
    # which here carries the URL's query.
    root = tmp_path / f"blobs?token={SECRET}"
    root.write_bytes(b"")
    store = FsspecArtifactStore(f"file://{root}")
    assert store.url == f"file://{tmp_path}/blobs?token=***"
    with pytest.raises(StorageUnavailable) as write:
        store.put_bytes(b"model")
    with pytest.raises(StorageUnavailable) as read:
        store.get_bytes("0" * 64)
    for info in (write, read):
        assert_hidden(info.value, caplog)
        assert "Not a directory" in str(info.value), str(info.value)
