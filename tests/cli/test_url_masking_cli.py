"""The console script never prints a credential of a store URL: not in an error about an
unreachable database, not in ``store info`` (text or JSON). Both the userinfo password and
secret query parameters (``password``, ``sslpassword``, ``token``) are masked."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from modelyard import errors
from tests.cli.conftest import serve_churn

SECRET = "S3cret-Pw"


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: a connection to it is refused, and no other process
    can take it meanwhile (a port closed before use could be)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_unreachable_database_error_shows_no_credential(cli: Any) -> None:
    with socket.socket() as sock:  # a port nothing listens on (serve must be able to take it)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
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


@contextmanager
def files_over_http(folder: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving ``folder``; yields its base URL."""
    handler = partial(QuietFiles, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Nothing on the test's stderr."""


def test_batch_input_url_credentials_are_never_shown(
    cli: Any, model_files: Any, tmp_path: Path
) -> None:
    # A presigned or token URL is a common batch input: its token must not reach the job's
    # JSON, `jobs show`, the job's log or an error message.
    serve_churn(cli, model_files)
    served = tmp_path / "served"
    served.mkdir()
    model_files.frame.to_csv(served / "rows.csv", index=False, header=False)
    with files_over_http(served) as base:
        given = f"{base}/rows.csv?X-Amz-Signature={SECRET}&token={SECRET}"
        done = cli("batch", "churn:1", "--input", given, "--content-type", "text/csv",
                   "--output", tmp_path / "out", "--workers", "1", "--json")  # fmt: skip
        job = done.ok().json()
        assert job["status"] == "Completed", job
        assert job["spec"]["input"] == f"{base}/rows.csv?X-Amz-Signature=***&token=***", job
        shown = [
            cli("jobs", "show", job["name"]).ok(),
            cli("jobs", "show", job["name"], "--json").ok(),
            cli("jobs", "list", "--json").ok(),
            cli("jobs", "logs", job["name"]).ok(),
        ]
        missing = cli("batch", "churn:1", "--input", given.replace("rows.csv", "gone.csv"),
                      "--output", tmp_path / "out2")  # fmt: skip
        line = missing.error_line(errors.InvalidInput.exit_code)
        assert "gone.csv?X-Amz-Signature=***&token=***" in line, line
        for result in (done, *shown, missing):
            assert SECRET not in result.out + result.err, result.args


def test_schedule_batch_url_credentials_are_never_shown(
    cli: Any, model_files: Any, tmp_path: Path
) -> None:
    serve_churn(cli, model_files)
    served = tmp_path / "served"
    served.mkdir()
    model_files.frame.to_csv(served / "rows.csv", index=False, header=False)
    with files_over_http(served) as base:
        given = f"{base}/rows.csv?X-Amz-Signature={SECRET}"
        out = f"{tmp_path}/out/{{tick}}"
        created = cli("schedules", "create", "nightly", "--cron", "0 6 * * *", "--", "batch",
                      "churn:1", "--input", given, "--output", out)  # fmt: skip
        created.ok()
    shown = [
        cli("schedules", "list").ok(),
        cli("schedules", "list", "--json").ok(),
        cli("schedules", "show", "nightly").ok(),
        cli("schedules", "show", "nightly", "--json").ok(),
    ]
    assert f"{base}/rows.csv?X-Amz-Signature=***" in shown[2].out, shown[2].out
    for result in (created, *shown):
        assert SECRET not in result.out + result.err, result.args
    platform = cli.platform()
    try:  # the stored request keeps it: each tick's job reads through it
        assert platform.schedules.get("nightly").request.input == given
    finally:
        platform.close()


def test_invoke_url_credentials_are_never_shown(cli: Any, tmp_path: Path) -> None:
    """``invoke --url`` (or MODELYARD_SERVING_URL) may name a gateway with its password or
    token: the errors about an unreachable server and about an answer that is not
    modelyard's quoted the URL whole."""
    with refusing_port() as port:
        unreachable = cli(
            "invoke", "api", "--data", "[[1, 2]]", "--url", f"http://ann:{SECRET}@127.0.0.1:{port}"
        )
    line = unreachable.error_line(errors.ServerUnreachable.exit_code)
    assert f"http://ann:***@127.0.0.1:{port}" in line, line
    with files_over_http(tmp_path) as base:  # answers POST with its own 501 page
        url = base.replace("http://", f"http://ann:{SECRET}@")
        answered = cli(
            "invoke", "api", "--data", "[[1, 2]]", env=cli.env(MODELYARD_SERVING_URL=url)
        )
    assert answered.code != 0 and "501" in answered.err, answered.err
    for result in (unreachable, answered):
        assert SECRET not in result.out + result.err, result.err
