"""``alarms create|list|show|history|delete`` through the installed console script on a real
store: the JSON shapes, and refusals that exit with their code, say why (an unknown metric
lists the metrics) and change nothing."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """churn:1 (XGBoost on age, tenure, spend, visits) served by endpoint ``churn-api``."""
    cli = make_cli(tmp_path_factory.mktemp("alarms") / "home")
    platform = cli.platform()
    try:
        platform.registry.register(
            "churn", model_files.xgb_json, flavor="xgboost", input_example=model_files.example
        )
        platform.endpoints.create("churn-api", {"blue": "churn:1", "green": "churn:1"})
    finally:
        platform.close()
    return cli


NO_DRIFT_CHECKS = (
    "endpoint 'churn-api' has no scheduled drift checks, and drift scores come only from their "
    "runs: this rule gets no data until they are scheduled"
)


def alarms(cli: Any) -> Any:
    return cli("alarms", "list", "--json").ok().json()


def test_create_list_show_history_delete(home: Any) -> None:
    made = home(
        "alarms", "create", "p99-high", "--endpoint", "churn-api", "--metric", "latency_p99_ms",
        "--above", "250", "--datapoints", "3", "--of", "5", "--window", "2m",
        "--webhook", "http://127.0.0.1:9/hook", "--json",
    ).ok().json()  # fmt: skip
    assert made["state"] == "INSUFFICIENT_DATA" and made["evaluated_at"] is None
    assert made["condition"] == "latency_p99_ms max > 250 for 3 of 5 windows of 2m"
    assert made["missing"] == "insufficient", "no data is never OK unless the rule says so"
    assert made["sinks"] == [
        {"kind": "log", "target": None},
        {"kind": "webhook", "target": "http://127.0.0.1:9/hook"},
    ]
    drift = home(
        "alarms", "create", "green-drift", "--endpoint", "churn-api", "--variant", "green",
        "--metric", "drift.feature.spend", "--below", "0.5", "--inclusive",
    )  # fmt: skip
    assert drift.code == 0 and drift.out == (
        "alarm green-drift created: drift.feature.spend max <= 0.5 for 1 of 1 windows of 5m\n"
    )
    # The endpoint's drift checks are not scheduled: taken, but not in silence.
    assert drift.err == f"warning: {NO_DRIFT_CHECKS}\n"
    idle = home(
        "alarms", "create", "idle", "--endpoint", "churn-api", "--metric", "requests",
        "--below", "1", "--missing", "zero",
    ).ok()  # fmt: skip
    assert idle.out.endswith("requests sum < 1 for 1 of 1 windows of 5m, missing data as zero\n")
    assert [(a["name"], a["state"], a["missing"]) for a in alarms(home)] == [
        ("green-drift", "INSUFFICIENT_DATA", "insufficient"),
        ("idle", "INSUFFICIENT_DATA", "zero"),
        ("p99-high", "INSUFFICIENT_DATA", "insufficient"),
    ]
    assert home("alarms", "delete", "idle").ok().out == "alarm idle deleted\n"
    assert "churn-api/green" in home("alarms", "list", "--endpoint", "churn-api").ok().out
    shown = home("alarms", "show", "p99-high").ok().out
    assert shown.startswith("Alarm p99-high\n")
    assert "  state      INSUFFICIENT_DATA\n" in shown
    assert "  sinks      log, webhook http://127.0.0.1:9/hook\n" in shown
    assert home("alarms", "show", "p99-high", "--json").ok().json() == made
    assert home("alarms", "history", "p99-high", "--json").ok().json() == []
    assert f"  note       {NO_DRIFT_CHECKS}\n" in home("alarms", "show", "green-drift").ok().out
    assert "note" not in shown
    assert home("alarms", "delete", "green-drift").ok().out == "alarm green-drift deleted\n"
    assert [a["name"] for a in alarms(home)] == ["p99-high"]


REFUSALS = [
    (["--metric", "latency_p999_ms", "--above", "1"], 2, "unknown metric 'latency_p999_ms'"),
    (
        ["--metric", "drift.feature.income", "--above", "1"],
        2,
        "unknown drift score 'drift.feature.income'",
    ),
    (["--metric", "latency_p99_ms", "--above", "1", "--missing", "zero"], 2, "only for a count"),
    (["--metric", "requests", "--above", "1", "--missing", "never"], 2, "--missing"),
    (["--metric", "requests", "--above", "1", "--below", "2"], 2, "exactly one of --above"),
    (["--metric", "requests"], 2, "exactly one of --above"),
    (
        ["--metric", "requests", "--above", "1", "--datapoints", "3", "--of", "2"],
        2,
        "cannot exceed",
    ),
    (["--metric", "requests", "--above", "1", "--window", "90s"], 2, "whole number of minutes"),
    (["--metric", "requests", "--above", "1", "--statistic", "p50"], 2, "use one of mean"),
    (["--metric", "requests", "--above", "1", "--webhook", "nope"], 2, "http or https URL"),
    (["--metric", "requests", "--above", "1", "--variant", "red"], 3, "no variant 'red'"),
    # churn:1 predicts a float (a probability, counted as a number): no class shares.
    (["--metric", "class_share.1", "--above", "0.5"], 2, "serves churn:1, whose output is numbers"),
]


def test_refusals_exit_with_their_code_and_change_nothing(home: Any) -> None:
    before = alarms(home)
    calls = [
        ["alarms", "create", "refused", "--endpoint", "churn-api", *args] for args, _, _ in REFUSALS
    ]
    calls += [
        ["alarms", "create", "x", "--endpoint", "nope", "--metric", "requests", "--above", "1"],
        ["alarms", "show", "ghost"],
        ["alarms", "history", "ghost"],
        ["alarms", "delete", "ghost"],
    ]
    expected = [(code, says) for _, code, says in REFUSALS] + [
        (3, "'nope'"),
        (3, "no alarm named 'ghost'"),
        (3, "no alarm named 'ghost'"),
        (3, "no alarm named 'ghost'"),
    ]
    results = home.many(*calls)
    for (code, says), result in zip(expected, results, strict=True):
        assert result.code == code, result
        assert says in result.err, result
        assert "Traceback" not in result.err and result.out == ""
    unknown = results[0].error_line(2)
    for known in ("requests", "error_rate", "latency_p99_ms", "drift.share", "drift.feature.spend"):
        assert known in unknown, f"the refusal lists {known}: {unknown}"
    assert alarms(home) == before


def test_scheduling_drift_checks_feeds_drift_alarms_and_unscheduling_says_it_starves_them(
    home: Any,
) -> None:
    home("monitor", "schedule", "churn-api", "--every", "1h").ok()
    made = home(
        "alarms", "create", "share", "--endpoint", "churn-api", "--metric", "drift.share",
        "--above", "0.3", "--json",
    ).ok().json()  # fmt: skip
    assert made["note"] is None
    gone = home("monitor", "unschedule", "churn-api")
    assert gone.code == 0 and gone.out == "unscheduled drift checks of churn-api\n"
    assert gone.err == (
        "warning: alarms on its drift scores get no data until they are scheduled again: share\n"
    )
    assert home("alarms", "show", "share", "--json").ok().json()["note"] == NO_DRIFT_CHECKS
    home("alarms", "delete", "share").ok()
