"""``modelyard jobs logs``: a job that prints 50 MB leaves one capped log, read whole, by its
first or last lines, or followed as it grows."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

from tests.cli.conftest import SCRIPT, Cli, ModelFiles

FIRST, LAST = "FIRST-LINE-OF-THE-FLOOD", "LAST-LINE-OF-THE-FLOOD"
MB_LINE = "x" * 1_000_000
# Prints ~50 MB in 1 MB lines (after a go file appears, when one is named), then saves the
# model the test handed it.
FLOOD_SCRIPT = """\
import os, shutil, sys, time
print("FIRST-LINE-OF-THE-FLOOD", flush=True)
go = os.environ.get("FLOOD_GO")
deadline = time.monotonic() + 120
while go and not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.05)
for _ in range({lines}):
    sys.stdout.write("x" * 1_000_000 + "\\n")
print("LAST-LINE-OF-THE-FLOOD", flush=True)
shutil.copy({model!r}, os.path.join(os.environ["SM_MODEL_DIR"], "xgboost-model"))
"""
MARKER = re.compile(r"^\[modelyard: ([\d,]+) bytes \(([\d,]+) lines\) cut here; .*\]$")
# The default cap: the first MiB and the last 4 MiB, and the marker line between them.
CAP = 5 * 1024 * 1024 + 256
NOTE = re.compile(r"^\[modelyard: ([\d,]+) more bytes were cut here while following\]$")


def _flood(tmp_path: Path, model_files: ModelFiles, lines: int = 50) -> Path:
    script = tmp_path / "src" / "flood.py"
    script.parent.mkdir()
    script.write_text(FLOOD_SCRIPT.format(lines=lines, model=str(model_files.xgb_json)))
    return script


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_job_printing_50_mb_keeps_one_capped_log(
    cli: Cli, model_files: ModelFiles, tmp_path: Path
) -> None:
    done = cli(
        "train", "flood", "--script", _flood(tmp_path, model_files), "--train", model_files.example
    )
    assert done.code == 0, done.err
    (job,) = cli("jobs", "list", "--json").ok().json()
    assert job["status"] == "Completed" and job["log_digest"]
    name, cap = job["name"], CAP

    # One copy: the store's, capped; nothing big left under the home's job folder.
    blob = next((cli.home / "artifacts").rglob(job["log_digest"]))
    assert blob.stat().st_size <= cap
    assert _bytes_under(cli.home / "jobs") == 0
    assert _bytes_under(cli.home / "artifacts") < cap + 1_000_000  # the log and the model

    whole = cli("jobs", "logs", name).ok().out
    assert whole.encode() == blob.read_bytes()
    lines = whole.splitlines()
    assert lines[0] == f"job {name}: training model 'flood'" and lines[1] == FIRST
    assert lines[-1] == LAST
    (marker,) = [m for m in map(MARKER.match, lines) if m]
    # 1 MB lines: one fits in the 1 MiB head, four in the 4 MiB tail; the rest were cut.
    assert marker.group(1) == "45,000,045" and marker.group(2) == "45"
    assert lines.count(MB_LINE) == 5

    tail = cli("jobs", "logs", name, "--tail", "5").ok().out
    assert tail.splitlines() == lines[-5:] and tail.endswith(LAST + "\n")
    assert cli("jobs", "logs", name, "-n", "1").ok().out == LAST + "\n"
    assert cli("jobs", "logs", name, "--head", "2").ok().out.splitlines() == lines[:2]
    assert cli("jobs", "logs", name, "--tail", "0").ok().out == ""
    # Following an ended job prints its log once and returns.
    assert cli("jobs", "logs", name, "-f").ok().out == whole
    assert cli("jobs", "logs", name, "-f", "--tail", "2").ok().out.splitlines() == lines[-2:]


def test_jobs_logs_refuses_bad_counts_and_unknown_jobs(cli: Cli) -> None:
    results = cli.many(
        ("jobs", "logs", "no-such-job", "--tail", "-1"),
        ("jobs", "logs", "no-such-job", "--tail", "abc"),
        ("jobs", "logs", "no-such-job", "--head", "-3"),
        ("jobs", "logs", "no-such-job", "--head", "1", "--tail", "1"),
        ("jobs", "logs", "no-such-job", "--head", "1", "-f"),
    )
    expected = [
        "Invalid value for '--tail'",
        "Invalid value for '--tail'",
        "Invalid value for '--head'",
        "'--head': cannot go with --tail or --follow",
        "'--head': cannot go with --tail or --follow",
    ]
    for result, words in zip(results, expected, strict=True):
        assert result.code == 2 and result.out == "", result
        assert "Usage:" in result.err and words in result.err, result.err
    for args in (
        ("jobs", "logs", "no-such-job"),
        ("jobs", "logs", "no-such-job", "-n", "3"),
        ("jobs", "logs", "no-such-job", "-f"),
    ):
        assert "no-such-job" in cli(*args).error_line(3)


def test_follow_a_job_while_its_log_is_cut(
    cli: Cli, model_files: ModelFiles, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    env = cli.env(FLOOD_GO=str(go))
    submitted = (
        cli(
            "train",
            "flood",
            "--script",
            _flood(tmp_path, model_files, lines=30),
            "--train",
            model_files.example,
            "--no-wait",
            "--json",
            env=env,
        )
        .ok()
        .json()
    )
    follow = subprocess.Popen(
        [str(SCRIPT), "jobs", "logs", "-f", submitted["name"]],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(180, follow.kill)  # a hung follower fails, never hangs the run
    watchdog.start()
    try:
        assert follow.stdout is not None
        shown = [follow.stdout.readline(), follow.stdout.readline()]
        assert shown[1] == FIRST + "\n", shown  # it follows the job while it runs …
        go.touch()  # … and keeps following while 30 MB go through the log
        out, err = follow.communicate(timeout=180)
    finally:
        watchdog.cancel()
    assert follow.returncode == 0 and err == "", err
    lines = "".join([*shown, out]).splitlines()
    assert lines[1] == FIRST and lines[-1] == LAST
    assert lines.count(FIRST) == 1 and lines.count(LAST) == 1
    for line in lines[2:-1]:
        # Whole lines, or a line the log cut while it was being shown, then a note saying so.
        assert set(line) == {"x"} or MARKER.match(line) or NOTE.match(line), line[:100]
    job = cli("jobs", "show", submitted["name"], "--json").ok().json()
    assert job["status"] == "Completed"
