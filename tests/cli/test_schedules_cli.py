"""``modelyard schedules …`` and ``modelyard scheduler`` through the installed console script on a
real store: JSON shapes, the run history linked to the jobs, refusals with their exit codes that
store nothing, and two ``scheduler --once`` processes at a time starting a missed tick's
catch-up run once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelyard.domain.batch import TransformRequest
from modelyard.services.schedules import ScheduleService
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.lease_store import SqlLeaseStore
from modelyard.storage.sql.schedule_store import SqlScheduleStore
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """churn:1 (XGBoost on age, tenure, spend, visits) and a headerless CSV of 50 rows."""
    folder = tmp_path_factory.mktemp("schedules")
    cli = make_cli(folder / "home")
    platform = cli.platform()
    try:
        platform.registry.register(
            "churn", model_files.xgb_json, flavor="xgboost", input_example=model_files.example
        )
    finally:
        platform.close()
    model_files.frame.head(50).to_csv(folder / "in.csv", index=False, header=False)
    return cli


def batch_args(home: Any, *extra: str, output: str = "out/{tick:%Y-%m-%d}") -> list[str]:
    data = home.home.parent
    return ["--", "batch", "churn", "--input", str(data / "in.csv"), "--output", output, *extra]


def listed(home: Any) -> list[dict[str, Any]]:
    return home("schedules", "list", "--json").ok().json()  # type: ignore[no-any-return]


def test_create_list_show_pause_resume_delete(home: Any, tmp_path: Path) -> None:
    output = str(tmp_path / "scores" / "{tick:%Y-%m-%d}")
    made = home(
        "schedules", "create", "weekly", "--cron", "0 6 * * 1", "--timezone", "Europe/Paris",
        "--missed", "skip", "--json", *batch_args(home, "--max-errors", "3", output=output),
    ).ok().json()  # fmt: skip
    assert (made["name"], made["cron"], made["timezone"], made["missed"], made["paused"]) == (
        "weekly",
        "0 6 * * 1",
        "Europe/Paris",
        "skip",
        False,
    )
    assert made["request"]["model"] == "churn" and made["request"]["max_errors"] == 3
    assert made["request"]["output"] == output
    next_run = datetime.fromisoformat(made["next_run"])
    assert next_run.astimezone(UTC).weekday() == 0 and next_run > datetime.now(UTC)
    as_json, table, shown, text = (
        r.ok()
        for r in home.many(
            ["schedules", "list", "--json"],
            ["schedules", "list"],
            ["schedules", "show", "weekly", "--json"],
            ["schedules", "show", "weekly"],
        )
    )
    assert [s["name"] for s in as_json.json()] == ["weekly"]
    assert "weekly" in table.out and "Europe/Paris" in table.out
    assert shown.json()["runs"] == [] and shown.json()["schedule"]["name"] == "weekly"
    assert "'0 6 * * 1' in Europe/Paris" in text.out and "max_errors=3" in text.out
    assert home("schedules", "pause", "weekly").ok().out == "paused schedule weekly\n"
    assert home("schedules", "pause", "weekly").ok().out == "schedule weekly was paused already\n"
    paused = listed(home)[0]
    assert paused["paused"] is True and paused["next_run"] is None
    assert home("schedules", "resume", "weekly").ok().out.startswith("resumed schedule weekly")
    assert home("schedules", "delete", "weekly").ok().out == "deleted schedule weekly\n"
    assert listed(home) == []


REFUSALS = [
    (["--cron", "0 6 * *"], None, 2, "invalid cron expression '0 6 * *'"),
    (["--cron", "0 6 30 2 *"], None, 2, "no date ever matches"),
    (["--cron", "0 6 * * 1", "--timezone", "Europe/Pariss"], None, 2, "'Europe/Pariss'"),
    (["--cron", "0 6 * * 1"], ["--bogus"], 2, "invalid batch command line"),
    (["--cron", "0 6 * * 1"], ["--workers", "0"], 2, "invalid batch command line"),
    (["--cron", "0 6 * * 1"], "fixed", 2, "put {tick} in the output"),
    (["--cron", "0 6 * * 1"], "unknown-model", 3, "'nope'"),
    (["--cron", "0 6 * * 1"], "missing-input", 2, "nowhere.csv"),
    (["--cron", "0 6 * * 1"], "not-batch", 2, "a schedule runs a batch command"),
]


def _refused_create(home: Any, options: list[str], batch: Any) -> list[str]:
    args = ["schedules", "create", "nightly", *options]
    if batch == "fixed":
        return [*args, *batch_args(home, output=str(home.home.parent / "fixed"))]
    if batch == "unknown-model":
        return [*args, *[a if a != "churn" else "nope" for a in batch_args(home)]]
    if batch == "missing-input":
        return [*args, "--", "batch", "churn", "--input", "nowhere.csv", "--output", "o/{tick}"]
    if batch == "not-batch":
        return [*args, "--", "train", "churn"]
    return [*args, *batch_args(home, *(batch or []))]


def test_refusals_exit_with_their_code_and_store_nothing(home: Any) -> None:
    results = home.many(*[_refused_create(home, o, b) for o, b, _, _ in REFUSALS])
    for (_, _, code, says), result in zip(REFUSALS, results, strict=True):
        line = result.error_line(code)
        assert says in line, result
    # A policy that is not one is a usage error (click's Usage/Error text), exit 2.
    usage = home(*_refused_create(home, ["--cron", "0 6 * * 1", "--missed", "later"], None))
    assert usage.code == 2 and "'later' is not one of 'run-once', 'skip'" in usage.err, usage
    assert listed(home) == []


def test_a_taken_name_and_unknown_schedules(home: Any) -> None:
    home("schedules", "create", "daily", "--cron", "0 7 * * *", *batch_args(home)).ok()
    try:
        taken = home("schedules", "create", "daily", "--cron", "* * * * *", *batch_args(home))
        assert "a schedule named 'daily' already exists" in taken.error_line(4)
        assert [s["cron"] for s in listed(home)] == ["0 7 * * *"]
    finally:
        home("schedules", "delete", "daily").ok()
    commands = ("show", "pause", "resume", "delete")
    for result in home.many(*[["schedules", command, "nope"] for command in commands]):
        assert "no schedule named 'nope'" in result.error_line(3)


def test_two_schedulers_start_a_missed_tick_once_and_show_links_the_job(home: Any) -> None:
    # A schedule created 90 minutes ago (as if no scheduler had run since), whose daily tick
    # fell 30 minutes ago: the first pass makes one catch-up run (run-once).
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    tick = now - timedelta(minutes=30)
    platform = home.platform()
    engine = make_engine(platform.settings.resolved_db_url)
    try:
        service = ScheduleService(
            SqlScheduleStore(engine),
            SqlLeaseStore(engine),
            submit=platform.batch.submit,
            check=platform.batch.check,
            clock=lambda: now - timedelta(minutes=90),
        )
        data = home.home.parent
        output = str(data / "missed" / "{tick:%Y%m%d%H%M}")
        service.create(
            "missed",
            cron=f"{tick.minute} {tick.hour} * * *",
            request=TransformRequest("churn", str(data / "in.csv"), output),
        )
    finally:
        engine.dispose()
        platform.close()
    try:
        results = home.many(*[["scheduler", "--once", "--json"]] * 2)
        assert [r.code for r in results] == [0, 0], results
        ran = [run for r in results for run in r.json()["scheduled"]]
        assert len(ran) == 1, f"one catch-up run, from one of the two: {ran}"
        assert (ran[0]["status"], ran[0]["late"]) == ("submitted", True)
        assert home("scheduler", "--once", "--json").ok().json()["scheduled"] == []
        job = ran[0]["job"]
        done = wait_for(
            "the scheduled batch job to end",
            lambda: home("jobs", "show", job, "--json").ok().json(),
            lambda j: j["status"] in ("Completed", "Failed", "Stopped"),
            timeout=120,
        )
        assert done["status"] == "Completed", done
        assert (data / "missed" / f"{tick:%Y%m%d%H%M}" / "in.csv.out").exists()
        shown = home("schedules", "show", "missed", "--json").ok().json()
        assert [(r["job"], r["job_status"]) for r in shown["runs"]] == [(job, "Completed")]
        assert job in home("schedules", "show", "missed").ok().out
    finally:
        home("schedules", "delete", "missed").ok()
