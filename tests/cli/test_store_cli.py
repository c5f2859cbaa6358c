"""Failures below the registry, through the console script: bad settings, an unreachable
database, a read-only or full MODELYARD_HOME, corrupted and missing artifacts. Each ends with
the documented exit code and one ``error:`` line naming the problem, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

from modelyard import errors
from tests.interrupts import interruptible


def test_help_opens_no_database(cli: Any) -> None:
    root, models = cli.many(["--help"], ["models", "--help"])
    assert "models" in root.ok().out and "store" in root.out and "demo" in root.out
    for command in ("register", "list", "show", "versions", "verify", "alias", "tag", "delete"):
        assert command in models.ok().out
    assert not cli.home.exists(), "--help must not create MODELYARD_HOME or a database"


def test_unreachable_database_hides_the_password(cli: Any) -> None:
    env = cli.env(MODELYARD_DB_URL="postgresql+psycopg://user:s3cret@127.0.0.1:1/nodb")
    for result in (cli("models", "list", env=env), cli("store", "info", "--json", env=env)):
        line = result.error_line(errors.DatabaseUnavailable.exit_code)
        assert "postgresql+psycopg://user:***@127.0.0.1:1/nodb" in line, line
        assert "s3cret" not in result.err + result.out


def test_unknown_setting_is_refused_by_name(cli: Any) -> None:
    env = cli.env(MODELYARD_DB_URI="sqlite:///elsewhere.db")
    line = cli("models", "list", env=env).error_line(errors.ConfigError.exit_code)
    assert "MODELYARD_DB_URI" in line and "MODELYARD_DB_URL" in line, line
    assert not cli.home.exists()


def test_an_artifact_url_fsspec_cannot_open_is_one_error_line(cli: Any) -> None:
    """MODELYARD_ARTIFACT_URL with a protocol fsspec does not know, or one whose package is
    not installed, ended every command (``modelyard serve`` too) with fsspec's traceback: it is
    a bad setting (exit 2), or a missing optional dependency naming its package (exit 7)."""
    unknown = cli.env(MODELYARD_ARTIFACT_URL="nosuchproto://bucket/blobs")
    # OCI's driver, ocifs, is no dependency of modelyard's, not even an optional one.
    uninstalled = cli.env(MODELYARD_ARTIFACT_URL="oci://bucket@tenancy/blobs")
    with socket.socket() as sock:  # a port free to listen on: the store is opened after that
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    for env in (unknown, uninstalled):
        for args in (("models", "list"), ("serve", "--port", port, "--no-monitors")):
            result = cli(*args, env=env)
            if env is unknown:
                line = result.error_line(errors.ConfigError.exit_code)
                assert "nosuchproto://bucket/blobs" in line and "nosuchproto" in line, line
            else:
                line = result.error_line(errors.MissingDependency.exit_code)
                assert "oci://bucket@tenancy/blobs" in line and "ocifs" in line, line


def test_a_capture_url_fsspec_cannot_open_stops_serve_before_it_starts(cli: Any) -> None:
    """MODELYARD_CAPTURE_URL with a protocol fsspec does not know (or whose package is not
    installed) let the server start and then lose every captured row, only logged and
    counted: ``serve`` refuses it first, as it does such an artifact URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    serve = ("serve", "--port", port, "--no-monitors")
    unknown = cli(*serve, env=cli.env(MODELYARD_CAPTURE_URL="nosuchproto://bucket/rows"))
    line = unknown.error_line(errors.ConfigError.exit_code)
    assert "nosuchproto://bucket/rows" in line, line
    uninstalled = cli(*serve, env=cli.env(MODELYARD_CAPTURE_URL="oci://bucket@tenancy/rows"))
    line = uninstalled.error_line(errors.MissingDependency.exit_code)
    assert "oci://bucket@tenancy/rows" in line and "ocifs" in line, line


def test_read_only_home(cli: Any, tmp_path: Path, tmpfs: Any) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=1m") as home:
        existing = cli("models", "list", env=cli.env(MODELYARD_HOME=str(home)))
        missing = cli("models", "list", env=cli.env(MODELYARD_HOME=str(home / "sub")))
        line = existing.error_line(errors.StorageNotWritable.exit_code)
        assert str(home / "modelyard.db") in line, line
        line = missing.error_line(errors.StorageNotWritable.exit_code)
        assert str(home / "sub") in line and "Read-only" in line, line


def test_home_that_is_a_file(cli: Any, tmp_path: Path) -> None:
    """MODELYARD_HOME at a regular file (or under one) said 'cannot create MODELYARD_HOME …:
    File exists' (or 'Not a directory'): it names the file that is in the way, and the file is
    left as it was."""
    afile = tmp_path / "home.txt"
    afile.write_text("notes")
    at = cli("models", "list", env=cli.env(MODELYARD_HOME=str(afile)))
    under = cli("models", "list", env=cli.env(MODELYARD_HOME=str(afile / "sub" / "home")))
    line = at.error_line(errors.StorageNotWritable.exit_code)
    assert line == f"error: MODELYARD_HOME {afile} is a file, not a folder", line
    line = under.error_line(errors.StorageNotWritable.exit_code)
    assert line == (
        f"error: cannot create MODELYARD_HOME {afile / 'sub' / 'home'}: {afile} is a file, "
        "not a folder"
    ), line
    assert afile.read_text() == "notes"


def test_a_home_modelyard_creates_is_private_to_its_owner(cli: Any, tmp_path: Path) -> None:
    """A new home was made with the umask's mode (0755 under the usual 022): any local user
    could read the database, with every endpoint's redaction salt (a hashed SSN is then
    brute-forced in seconds), and the captured rows under it. modelyard never makes it
    readable by others; its group gets what the umask gives (a group of operators, 002); a
    folder that exists already keeps the mode its owner gave it."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)  # whatever the umask
    made = {}
    for umask in (0o022, 0o002):  # the command inherits the test process's umask
        home = made[umask] = tmp_path / f"parent-{umask:o}" / "home"
        old = os.umask(umask)
        try:
            cli("models", "list", env=cli.env(MODELYARD_HOME=str(home))).ok()
            cli("models", "list", env=cli.env(MODELYARD_HOME=str(shared))).ok()
        finally:
            os.umask(old)
        assert (home / "modelyard.db").is_file()
    assert stat.S_IMODE(made[0o022].stat().st_mode) == 0o750
    assert stat.S_IMODE(made[0o002].stat().st_mode) == 0o770
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_full_home(make_cli: Any, tmp_path: Path, model_files: Any, tmpfs: Any) -> None:
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    # ~1 MB: far more than the ~350 kB the tmpfs has left once the database (~250 kB) exists.
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(3000, 4)), columns=list(model_files.frame.columns))
    big = xgb.train(
        {"objective": "binary:logistic", "max_depth": 8, "seed": 0},
        xgb.DMatrix(frame, label=rng.integers(0, 2, 3000)),
        num_boost_round=250,
    )
    big_file = tmp_path / "big.ubj"
    big.save_model(str(big_file))
    assert big_file.stat().st_size > 800_000

    with tmpfs(tmp_path / "full", "size=640k") as home:
        cli = make_cli(home)
        assert cli("models", "list", "--json").ok().json() == []
        before = cli.snapshot()
        failed = cli("models", "register", "big", big_file, "--flavor", "xgboost")
        line = failed.error_line(errors.StorageNotWritable.exit_code)
        assert str(home) in line and "No space left" in line, line
        assert cli.snapshot() == before, "a failed register must leave nothing behind"


def test_corrupted_and_missing_artifact(cli: Any, model_files: Any) -> None:
    from modelyard.storage import packages

    platform = cli.platform()
    try:
        version = platform.registry.register(
            "churn", model_files.xgb_ubj, flavor="xgboost", input_example=model_files.example
        )
        manifest = packages.read_manifest(platform.artifacts, version.artifact_digest)
    finally:
        platform.close()
    (model_entry,) = (f for f in manifest["files"] if f["path"].startswith("model/"))
    digest = model_entry["sha256"]
    blob = cli.home / "artifacts" / "sha256" / digest[:2] / digest
    assert blob.is_file()

    blob.write_bytes(b"\0" * model_entry["size"])  # same size, different bytes
    shown, corrupted = cli.many(["models", "show", "churn:1"], ["models", "verify", "churn:1"])
    assert "sha256:" + version.artifact_digest in shown.ok().out
    line = corrupted.error_line(errors.ArtifactCorrupted.exit_code)
    assert digest in line and "corrupted" in line, line

    blob.unlink()
    line = cli("models", "verify", "churn").error_line(errors.ArtifactMissing.exit_code)
    assert digest in line and "missing" in line, line
    leftovers = list((cli.home / "tmp").rglob("*.*"))
    assert leftovers == [], f"failed loads left files behind: {leftovers}"


def test_ctrl_c_exits_130_without_traceback(cli: Any) -> None:
    proc = interruptible(
        [str(cli.script), "demo"],
        env=cli.env(PYTHONUNBUFFERED="1"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # The first line comes from inside the command, after start-up: a signal now is a
        # Ctrl-C during the work, not during interpreter start-up.
        first = proc.stdout.readline()
        assert first.startswith("Data:"), first
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
