"""``modelyard batch`` and ``modelyard jobs resume`` through the console script: a batch job
with its state in the store, bad requests refused before anything runs, and a job whose
worker is SIGKILLed mid-way resumed to the same bytes an uninterrupted run writes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli.conftest import FEATURES, Cli, ModelFiles, interrupt_while_waiting


def _until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def registered(cli: Cli, model_files: ModelFiles) -> Cli:
    cli("models", "register", "churn", model_files.xgb_json, "--flavor", "xgboost",
        "--input-example", model_files.example).ok()  # fmt: skip
    return cli


def _rows(path: Path, count: int, seed: int = 3) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, len(FEATURES)))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=",", fmt="%.17g")
    return rows


def test_batch_job_predicts_every_row_and_is_a_job(
    registered: Cli, model_files: ModelFiles, tmp_path: Path
) -> None:
    import xgboost as xgb

    rows = _rows(tmp_path / "in" / "rows.csv", 500)
    _rows(tmp_path / "in" / "more.csv", 20, seed=4)
    done = registered("batch", "churn:1", "--input", tmp_path / "in", "--output",
                      tmp_path / "out", "--json")  # fmt: skip
    job: dict[str, Any] = done.ok().json()
    assert (job["kind"], job["status"], job["model_version"]) == ("batch", "Completed", 1)
    assert job["metrics"]["batch.rows_in"] == 520 and job["metrics"]["batch.rows_failed"] == 0
    assert job["metrics"]["batch.files_done"] == job["metrics"]["batch.files_total"] == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["more.csv.out", "rows.csv.out"]
    got = np.loadtxt(tmp_path / "out" / "rows.csv.out", delimiter=",")
    want = model_files.booster.predict(xgb.DMatrix(rows.astype(np.float32), feature_names=FEATURES))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    listed = registered("jobs", "list", "--json").ok().json()
    assert [(j["name"], j["kind"]) for j in listed] == [(job["name"], "batch")]
    assert "batch transform of" in registered("jobs", "logs", job["name"]).ok().out


def test_bad_batch_requests_change_nothing(registered: Cli, tmp_path: Path) -> None:
    _rows(tmp_path / "in" / "rows.csv", 10)
    (tmp_path / "empty").mkdir()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "rows.csv.out").write_text("old\n")
    (tmp_path / "readonly").mkdir()
    (tmp_path / "readonly").chmod(0o500)
    before = registered.snapshot()
    rows = tmp_path / "in" / "rows.csv"
    results = registered.many(
        ("batch", "churn", "--input", tmp_path / "nope.csv", "--output", tmp_path / "o1"),
        ("batch", "churn", "--input", tmp_path / "empty", "--output", tmp_path / "o2"),
        ("batch", "nobody", "--input", rows, "--output", tmp_path / "o3"),
        ("batch", "churn:9", "--input", rows, "--output", tmp_path / "o4"),
        ("batch", "churn", "--input", rows, "--output", tmp_path / "taken"),
        ("batch", "churn", "--input", rows, "--output", tmp_path / "o5", "--split-type", "x"),
        ("batch", "churn", "--input", rows, "--output", tmp_path / "o6", "--max-errors", "-1"),
    )
    *refused, bad_split, bad_budget = results
    messages = [r.error_line(code) for r, code in zip(refused, (2, 2, 3, 3, 4), strict=True)]
    assert bad_split.code == 2 and "'x' is not one of 'line', 'none'" in bad_split.err
    assert bad_budget.code == 2 and "--max-errors" in bad_budget.err
    assert "nope.csv" in messages[0]
    assert "empty" in messages[1]
    assert "nobody" in messages[2] and "9" in messages[3]
    assert "rows.csv.out" in messages[4] and "pass --overwrite to replace them" in messages[4]
    if os.geteuid() != 0:  # root writes anywhere: the probe cannot fail
        unwritable = registered("batch", "churn", "--input", rows, "--output",
                                tmp_path / "readonly" / "sub")  # fmt: skip
        assert "readonly" in unwritable.error_line(6)
    assert registered("jobs", "list", "--json").ok().json() == []
    assert registered.snapshot() == before
    assert (tmp_path / "taken" / "rows.csv.out").read_text() == "old\n"
    assert not any((tmp_path / n).exists() for n in ("o1", "o2", "o3", "o4", "o5", "o6"))


def test_a_killed_job_resumes_to_the_same_bytes(registered: Cli, tmp_path: Path) -> None:
    # Many files, one model call per record: the job is mid-way for seconds, with some files
    # done, when it is killed.
    for index in range(16):
        _rows(tmp_path / "in" / f"part-{index:02d}.csv", 800, seed=index)
    slow = ("--workers", "1", "--batch-strategy", "single-record", "--json")
    whole = registered("batch", "churn", "--input", tmp_path / "in", "--output",
                       tmp_path / "whole", *slow)  # fmt: skip
    assert whole.ok().json()["status"] == "Completed"

    started = registered("batch", "churn", "--input", tmp_path / "in", "--output",
                         tmp_path / "out", "--no-wait", *slow)  # fmt: skip
    name = started.ok().json()["name"]
    platform = registered.platform()
    try:

        def some_done() -> bool:
            return platform.jobs.get(name).metrics.get("batch.files_done", 0) >= 2

        _until(some_done, "the job to finish a few files")
        job = platform.jobs.get(name)
        assert job.pid is not None
        os.killpg(job.pid, signal.SIGKILL)  # the worker and everything it started
        _until(lambda: platform.jobs.get(name).status.finished, "the dead job to be noticed")
        assert platform.jobs.get(name).status.value == "Failed"
    finally:
        platform.close()
    resumed = registered("jobs", "resume", name, "--json").ok().json()
    assert resumed["status"] == "Completed" and resumed["metrics"]["batch.rows_in"] == 12_800
    log = registered("jobs", "logs", name).ok().out  # both runs, one after the other
    assert log.count("batch transform of") == 2 and "--- resumed at " in log
    finished = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert finished == sorted(p.name for p in (tmp_path / "whole").iterdir())
    for file in finished:
        assert (tmp_path / "out" / file).read_bytes() == (tmp_path / "whole" / file).read_bytes()


def test_an_output_with_brackets_is_shown_as_it_is(registered: Cli, tmp_path: Path) -> None:
    # Printed as Rich markup, "[red]" vanished from the path shown, and "[/x]", a closing tag
    # without its opening one, ended the command in a traceback once the job had completed.
    _rows(tmp_path / "in" / "rows.csv", 10)
    output = tmp_path / "[red]scores[" / "x]"
    done = registered("batch", "churn", "--input", tmp_path / "in", "--output", output)
    assert done.code == 0 and "Traceback" not in done.err, done.err
    assert f"output in {output}" in done.out
    [job] = registered("jobs", "list", "--json").ok().json()
    shown = registered("jobs", "show", job["name"]).ok().out
    assert str(output) in shown


def test_a_repeated_input_or_output_is_refused(registered: Cli, tmp_path: Path) -> None:
    # Parsed as one value, the last --input won and the first was dropped without a word.
    _rows(tmp_path / "a" / "rows.csv", 10)
    _rows(tmp_path / "b" / "rows.csv", 10)
    twice_in = registered("batch", "churn", "--input", tmp_path / "a", "--input", tmp_path / "b",
                          "--output", tmp_path / "o1")  # fmt: skip
    twice_out = registered("batch", "churn", "--input", tmp_path / "a", "--output",
                           tmp_path / "o2", "--output", tmp_path / "o3")  # fmt: skip
    assert twice_in.code == 2 and "give --input once (it was given 2 times" in twice_in.err
    assert "one folder or name them with a glob" in twice_in.err
    assert twice_out.code == 2 and "give --output once" in twice_out.err
    assert registered("jobs", "list", "--json").ok().json() == []
    assert not any((tmp_path / n).exists() for n in ("o1", "o2", "o3"))


def test_a_schedules_batch_command_line_refuses_a_repeated_input() -> None:
    from modelyard.cli.batch import request_from_args
    from modelyard.errors import InvalidInput

    with pytest.raises(InvalidInput, match="give --input once"):
        request_from_args(["churn", "--input", "a", "--input", "b", "--output", "o"])
    parsed = request_from_args(["churn", "--input", "a", "--output", "o"])
    assert (parsed.input, parsed.output) == ("a", "o")


@pytest.mark.parametrize("flag", ["--wait", "--no-wait", "--json"])
def test_a_schedules_batch_command_line_refuses_the_options_of_the_command_itself(
    flag: str,
) -> None:
    # How `modelyard batch` waits and prints is no part of the request a schedule stores:
    # the options were taken and dropped without a word (a scheduled run never waits).
    from modelyard.cli.batch import request_from_args
    from modelyard.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        request_from_args(["churn", "--input", "a", "--output", "o", flag])
    assert f"{flag} is no option of a scheduled batch job" in refused.value.message


def test_content_types_are_read_as_the_python_api_reads_them() -> None:
    """--content-type takes what Transformer takes (a Typer choice refused application/json by
    line and a type with parameters, which the Python API and the job records accept)."""
    from modelyard.cli.batch import request_from_args
    from modelyard.domain.batch import BatchFormat
    from modelyard.errors import InvalidInput

    base = ["churn", "--input", "a", "--output", "o", "--content-type"]
    for given, read in (
        ("application/json", BatchFormat.JSONLINES),
        ("Text/CSV; charset=utf-8", BatchFormat.CSV),
        ("application/x-parquet", BatchFormat.PARQUET),
    ):
        assert request_from_args([*base, given]).content_type is read
    with pytest.raises(InvalidInput, match="invalid content-type 'text/plain'"):
        request_from_args([*base, "text/plain"])
    with pytest.raises(InvalidInput, match="give split-type Line"):
        request_from_args([*base, "application/json", "--split-type", "none"])


def test_ctrl_c_while_waiting_says_the_job_runs_on(registered: Cli, tmp_path: Path) -> None:
    for index in range(16):  # one model call per record: running for seconds
        _rows(tmp_path / "in" / f"part-{index:02d}.csv", 800, seed=index)
    name, err = interrupt_while_waiting(
        registered,
        ["batch", "churn", "--input", tmp_path / "in", "--output", tmp_path / "out",
         "--workers", "1", "--batch-strategy", "single-record"],
        r"batch job (\S+) started",
    )  # fmt: skip
    assert err.strip() == (
        f"interrupted: no longer waiting; batch job {name} keeps running in the background "
        f"(see it with `modelyard jobs show {name}`, stop it with `modelyard jobs stop {name}`)"
    )
    platform = registered.platform()
    try:  # and so it does, to its end
        assert platform.jobs.wait(name, timeout_s=300).status.value == "Completed"
    finally:
        platform.close()
    assert len(list((tmp_path / "out").glob("*.out"))) == 16
