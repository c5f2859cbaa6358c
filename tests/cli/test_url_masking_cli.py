"""The console script never prints a credential of a store URL: not in an error about an
unreachable database, not in ``store info`` (text or JSON). Both the userinfo password and
secret query parameters (``password``, ``sslpassword``, ``token``) are masked."""

from __future__ import annotations

import json
import socket
from typing import Any

import sqlalchemy as sa

from modelyard import errors

SECRET = "S3cret-Pw"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_database_error_shows_no_credential(cli: Any) -> None:
    port = closed_port()
    url = f"postgresql+psycopg://ann:{SECRET}@127.0.0.1:{port}/x?password={SECRET}"
    env = cli.env(MODELYARD_DB_URL=url)
    for args in (["models", "list"], ["store", "info", "--json"], ["serve", "--port", port]):
        result = cli(*map(str, args), env=env)
        line = result.error_line(errors.DatabaseUnavailable.exit_code)
        assert f"postgresql+psycopg://ann:***@127.0.0.1:{port}/x?password=***" in line, line
        assert SECRET not in result.err + result.out


def test_store_info_shows_no_credential(cli: Any, pg_url: str) -> None:
    # The test server trusts local connections, so any password is accepted.
    db_url = sa.make_url(pg_url).set(
        password=SECRET, query={"password": SECRET, "sslpassword": SECRET}
    )
    env = cli.env(
        MODELYARD_DB_URL=db_url.render_as_string(hide_password=False),
        MODELYARD_ARTIFACT_URL=f"memory://ann:{SECRET}@bucket/blobs?token={SECRET}",
    )
    text, as_json = cli("store", "info", env=env), cli("store", "info", "--json", env=env)
    for result in (text, as_json):
        assert result.code == 0, result.err
        assert SECRET not in result.out + result.err
    shown = json.loads(as_json.out)
    assert shown["metadata_url"].endswith("?password=***&sslpassword=***"), shown
    assert ":***@127.0.0.1:5432/" in shown["metadata_url"], shown
    assert shown["artifact_url"] == "memory://ann:***@bucket/blobs?token=***", shown
    assert "memory://ann:***@bucket/blobs?token=***" in text.out
