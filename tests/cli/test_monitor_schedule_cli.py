"""``monitor schedule|schedules|unschedule|run|runs`` through the installed console script on a
real store: JSON shapes, exit codes of refusals (which change nothing), one tick run once by
two `monitor run --once` processes at a time, and the loop stopping cleanly on Ctrl-C."""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import SCRIPT, serve_churn
from tests.interrupts import interruptible
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """churn:1 (XGBoost on age, tenure, spend, visits) served by endpoint ``churn-api``."""
    home = tmp_path_factory.mktemp("monitor") / "home"
    return serve_churn(make_cli(home), model_files, "churn-api", "other")


def schedules(cli: Any) -> Any:
    return cli("monitor", "schedules", "--json").ok().json()


def test_schedule_reschedule_list_unschedule(home: Any) -> None:
    made = home(
        "monitor", "schedule", "churn-api", "--every", "10m", "--window", "2h", "--json"
    ).ok().json()  # fmt: skip
    assert (made["name"], made["every_s"], made["cron"], made["window_s"]) == (
        "churn-api",
        600,
        None,
        7200,
    )
    again = home("monitor", "schedule", "churn-api", "--cron", "*/5 * * * *").ok()
    assert again.out.startswith("rescheduled drift checks of churn-api: cron */5 * * * *")
    listed = schedules(home)
    assert [(s["name"], s["cadence"], s["window"]) for s in listed] == [
        ("churn-api", "cron */5 * * * *", "1h")
    ]
    table = home("monitor", "schedules").ok().out
    assert "churn-api" in table and "cron */5 * * * *" in table
    assert (
        home("monitor", "unschedule", "churn-api").ok().out
        == "unscheduled drift checks of churn-api\n"
    )
    assert schedules(home) == []


def test_a_schedule_keeps_the_thresholds_it_was_given(home: Any) -> None:
    made = home(
        "monitor", "schedule", "churn-api", "--every", "10m", "--threshold", "psi=0.25",
        "--min-rows", "400", "--numeric-test", "psi", "--json",
    ).ok().json()  # fmt: skip
    config = made["drift_config"]
    assert (config["min_rows"], config["numeric_test"], config["thresholds"]["psi"]) == (
        400,
        "psi",
        0.25,
    )
    assert config["thresholds"]["ks"] == 0.03 and config["alpha"] == 0.05  # defaults kept
    assert schedules(home)[0]["drift_config"] == config  # read back from the store
    words = home("monitor", "schedule", "churn-api", "--every", "10m", "--alpha", "0.01").ok()
    assert words.out.rstrip().endswith("traffic, thresholds --alpha 0.01"), words.out
    plain = home("monitor", "schedule", "churn-api", "--every", "10m").ok()
    assert plain.out.rstrip().endswith("default thresholds"), plain.out
    home("monitor", "unschedule", "churn-api").ok()


REFUSALS = [
    (["schedule", "churn-api"], 2, "exactly one of --every and --cron"),
    (["schedule", "churn-api", "--every", "1m", "--cron", "* * * * *"], 2, "exactly one"),
    (["schedule", "churn-api", "--every", "5s"], 2, "at least 10"),
    (["schedule", "churn-api", "--every", "often"], 2, "not a duration: 'often'"),
    (["schedule", "churn-api", "--cron", "every minute"], 2, "invalid cron expression"),
    (["schedule", "churn-api", "--every", "1m", "--window", "0s"], 2, "longer than zero"),
    (["schedule", "nope", "--every", "1m"], 3, "'nope'"),
    (["unschedule", "nope"], 3, "no monitor schedule named 'nope'"),
    (["runs", "nope"], 3, "no monitor schedule named 'nope'"),
    (["run", "--json"], 2, "--json goes with --once"),
    (["schedule", "churn-api", "--every", "1m", "--threshold", "ks=big"], 2, "must be a number"),
    (["schedule", "churn-api", "--every", "1m", "--alpha", "2"], 2, "alpha must be in (0, 1]"),
    (["schedule", "churn-api", "--every", "1m", "--text-test", "chi_square"], 2, "cannot test"),
]


def test_refusals_exit_with_their_code_and_change_nothing(home: Any) -> None:
    before = schedules(home)
    results = home.many(*[["monitor", *args] for args, _, _ in REFUSALS])
    for (_, code, says), result in zip(REFUSALS, results, strict=True):
        assert result.code == code, result
        assert says in result.err, result
        assert "Traceback" not in result.err
        assert result.out == "", result
    assert schedules(home) == before


def test_two_run_once_processes_run_each_tick_once(home: Any) -> None:
    home("monitor", "schedule", "other", "--every", "10s", "--window", "1m").ok()
    try:
        # Two passes at a time, again and again, until one fell after a tick of the schedule.
        def both_passes() -> list[Any]:
            results = home.many(*[["monitor", "run", "--once", "--json"]] * 2)
            # (A check that fails is also logged on stderr; exit 0 either way.)
            assert [r.code for r in results] == [0, 0], results
            return [r.json()["runs"] for r in results]

        passes = wait_for("a tick of the schedule to run", both_passes, lambda p: p[0] or p[1])
        ran = [run for runs in passes for run in runs]
        assert len({run["tick"] for run in ran}) == len(ran), f"a tick ran twice: {ran}"
        stored = home("monitor", "runs", "other", "--json").ok().json()
        assert {r["tick"] for r in stored} >= {r["tick"] for r in ran}
        assert all(r["status"] in ("succeeded", "failed") for r in stored)
        table = home("monitor", "runs", "other").ok().out
        assert "Monitor runs of other" in table
    finally:
        home("monitor", "unschedule", "other").ok()


def test_runs_say_a_check_without_data_had_no_verdict(home: Any) -> None:
    # Endpoint 'other' has no captured rows and its version no baseline: the tick runs and
    # succeeds, but it judged nothing, and the listing must say so rather than "0 scores".
    home("monitor", "schedule", "other", "--every", "10s", "--window", "10s").ok()
    try:
        platform = home.platform()
        try:
            ran = platform.monitors.run_due(now=datetime.now(UTC) + timedelta(seconds=20))
        finally:
            platform.close()
        assert [r.status.value for r in ran] == ["succeeded"]
        table = home("monitor", "runs", "other").ok().out
        assert "blue: insufficient_data (no baseline)" in table, table
        assert "scores" not in table.split("Monitor runs of other", 1)[1], table
    finally:
        home("monitor", "unschedule", "other").ok()


def test_the_loop_runs_ticks_until_ctrl_c(home: Any, tmp_path: Path) -> None:
    # (SIGTERM, as `modelyard serve` stops it, is covered by tests/e2e/test_monitor_loop.py.)
    name = "churn-api"
    home("monitor", "schedule", name, "--every", "10s", "--window", "1m").ok()
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        loop = interruptible(
            [str(SCRIPT), "monitor", "run", "--poll", "0.5"],
            env=home.env(),
            stdout=stdout,
            stderr=stderr,
        )
    try:
        # The line the loop prints once a run has ended (and was stored).
        wait_for(
            "the loop to run a tick", out.read_text, lambda text: f"monitor {name} at " in text
        )
        loop.send_signal(signal.SIGINT)
        loop.wait(60)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
        home("monitor", "unschedule", name).ok()
    assert loop.returncode == 0, err.read_text()
    assert "monitor loop running: 1 schedule(s)" in err.read_text()
    assert "monitor loop stopped" in err.read_text()
    printed = re.search(rf"monitor {name} at (\S+ \S+): ", out.read_text())
    assert printed is not None
    tick = datetime.fromisoformat(printed.group(1)).replace(tzinfo=UTC)
    stored = home("monitor", "runs", name, "--json").ok().json()
    assert tick.isoformat() in {r["tick"] for r in stored}
