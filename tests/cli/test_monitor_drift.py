"""``monitor baseline`` and ``monitor drift`` through the installed console script on a real
store: a baseline set from a file and shown, drift of a file and of an (empty) window as a table
and as JSON, and refusals as one error line with the matching exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """``churn:1`` and ``churn:2`` (no baseline) at endpoint ``api`` (variants blue, green),
    and the files the commands read."""
    folder = tmp_path_factory.mktemp("monitor-drift")
    cli = make_cli(folder / "home")
    platform = cli.platform()
    try:
        for _ in range(2):
            platform.registry.register(
                "churn", model_files.skops, flavor="sklearn", input_example=model_files.example
            )
        platform.endpoints.create("api", {"blue": "churn:1", "green": "churn:2"})
    finally:
        platform.close()
    rng = np.random.default_rng(1)
    columns = list(model_files.frame.columns)
    base = pd.DataFrame(rng.normal(size=(3000, 4)), columns=columns)
    base.to_csv(folder / "base.csv", index=False)
    current = pd.DataFrame(rng.normal(size=(3000, 4)), columns=columns)
    current["age"] += 1.0
    current.to_csv(folder / "current.csv", index=False)
    base.drop(columns=["tenure"]).to_csv(folder / "lacking.csv", index=False)
    cli.files = folder
    return cli


def test_set_show_and_compare(home: Any) -> None:
    files: Path = home.files
    set_out = home("monitor", "baseline", "churn:1", "--data", files / "base.csv").ok().out
    assert "baseline of churn:1 set from" in set_out and "3,000 rows, 4 feature(s)" in set_out
    assert "predictions prediction" in set_out
    shown, report, table, window = home.many(
        ("monitor", "baseline", "churn:1", "--json"),
        ("monitor", "drift", "api", "--data", files / "current.csv", "--json"),
        ("monitor", "drift", "api", "--variant", "blue", "--data", files / "current.csv"),
        ("monitor", "drift", "api", "--window", "30m", "--json"),
    )
    summary = shown.ok().json()
    assert summary["model"] == "churn:1" and summary["row_count"] == 3000
    assert summary["columns"] == ["age", "tenure", "spend", "visits"]
    assert summary["predictions"]["columns"] == ["prediction"]
    blue, green = report.ok().json()
    assert (blue["variant"], blue["drifted"], blue["current_rows"]) == ("blue", ["age"], 3000)
    assert blue["scores"]["drift.feature.age"] == blue["features"][0]["effect"]
    assert green["verdict"] == "insufficient_data"
    out = table.ok().out
    for heading in ("feature", "test", "effect", "threshold", "p-value", "verdict"):
        assert heading in out
    assert "blue (churn:1)" in out and "3,000/3,000" in out and "drift" in out
    assert "green" not in out
    for empty in window.ok().json():
        assert empty["verdict"] == "insufficient_data" and empty["current_rows"] == 0


def test_refusals(home: Any) -> None:
    files: Path = home.files
    lacking, no_baseline, no_endpoint, both, bad_window, no_variant = home.many(
        ("monitor", "baseline", "churn:1", "--data", files / "lacking.csv"),
        ("monitor", "baseline", "churn:2"),
        ("monitor", "drift", "nope", "--data", files / "current.csv"),
        ("monitor", "drift", "api", "--window", "1h", "--data", files / "current.csv"),
        ("monitor", "drift", "api", "--window", "soon"),
        ("monitor", "drift", "api", "--variant", "red", "--window", "1h"),
    )
    assert "lacks column(s) tenure" in lacking.error_line(2)
    assert "churn:2 has no baseline" in no_baseline.error_line(3)
    assert "nope" in no_endpoint.error_line(3)
    assert both.code == 2 and "not both" in both.err
    assert "not a duration: 'soon'" in bad_window.error_line(2)
    assert "no variant 'red'" in no_variant.error_line(3)


def test_every_threshold_is_set_from_the_command_line(home: Any) -> None:
    """The same shifted file (``age`` + 1 standard deviation, KS effect ~0.38): ``age``
    drifts at the default thresholds, and the dataset does once a quarter of the features is
    enough; nothing drifts with a KS threshold above its effect; it is insufficient data when
    more rows are asked for than it holds. Each report says which thresholds it used."""
    files: Path = home.files
    current = files / "current.csv"
    home("monitor", "baseline", "churn:1", "--data", files / "base.csv").ok()
    default, share, lenient, strict_rows, other_test = home.many(
        ("monitor", "drift", "api", "--variant", "blue", "--data", current, "--json"),
        ("monitor", "drift", "api", "--variant", "blue", "--data", current, "--json",
         "--drift-share", "0.25"),
        ("monitor", "drift", "api", "--variant", "blue", "--data", current, "--json",
         "--threshold", "ks=0.6", "--alpha", "0.01", "--drift-share", "0.25"),
        ("monitor", "drift", "api", "--variant", "blue", "--data", current, "--json",
         "--min-rows", "5000"),
        ("monitor", "drift", "api", "--variant", "blue", "--data", current, "--json",
         "--numeric-test", "wasserstein", "--threshold", "wasserstein=5"),
    )  # fmt: skip
    (before,) = default.ok().json()  # one feature of four: below the default share, 0.5
    assert before["drifted"] == ["age"] and before["verdict"] == "no_drift"
    (quarter,) = share.ok().json()
    assert quarter["drifted"] == ["age"] and quarter["verdict"] == "drift"
    (after,) = lenient.ok().json()
    assert after["drifted"] == [] and after["verdict"] == "no_drift"
    age = next(f for f in after["features"] if f["name"] == "age")
    assert age["threshold"] == 0.6 and 0.3 < age["effect"] < 0.6
    config = after["config"]
    assert (config["alpha"], config["drift_share"]) == (0.01, 0.25)
    assert config["thresholds"]["ks"] == 0.6 and config["thresholds"]["psi"] == 0.1  # default
    (few,) = strict_rows.ok().json()
    assert few["verdict"] == "insufficient_data" and few["config"]["min_rows"] == 5000
    (wide,) = other_test.ok().json()
    age = next(f for f in wide["features"] if f["name"] == "age")
    assert age["test"] == "wasserstein" and age["threshold"] == 5.0 and wide["drifted"] == []


def test_bad_thresholds_are_refused_before_any_work(home: Any) -> None:
    current = home.files / "current.csv"
    drift = ("monitor", "drift", "api", "--data", current)
    unknown, not_number, negative, alpha, wrong_test, twice, above = home.many(
        (*drift, "--threshold", "entropy=0.1"),
        (*drift, "--threshold", "ks=high"),
        (*drift, "--threshold", "ks=-1"),
        (*drift, "--alpha", "0"),
        (*drift, "--numeric-test", "chi_square"),
        (*drift, "--threshold", "ks=0.1", "--threshold", "ks=0.2"),
        (*drift, "--threshold", "ks=2"),  # a KS statistic is never above 1
    )
    assert "no drift statistic named entropy" in unknown.error_line(2)
    assert not_number.code == 2 and "must be a number" in not_number.err
    assert "ks threshold must be a number >= 0" in negative.error_line(2)
    assert "alpha must be in (0, 1]" in alpha.error_line(2)
    assert "cannot test numeric columns" in wrong_test.error_line(2)
    assert twice.code == 2 and "given twice" in twice.err
    assert "ks threshold must be from 0 to 1" in above.error_line(2)
    for refused in (unknown, not_number, negative, alpha, wrong_test, twice, above):
        assert refused.out == "" and "Traceback" not in refused.err


def test_the_drifted_share_printed_counts_the_features_it_is_a_share_of(home: Any) -> None:
    """The share (and the dataset verdict) counts the features with a verdict: two of four with
    too few values left 'drift, 1 of 4 features drifted (50%)', a share that reads as wrong
    and a verdict the default drift share of 0.5 seemed not to allow."""
    files: Path = home.files
    home("monitor", "baseline", "churn:1", "--data", files / "base.csv").ok()
    sparse = pd.read_csv(files / "current.csv")
    sparse.loc[50:, ["tenure", "spend"]] = np.nan  # 50 values each: below min_rows (100)
    sparse.to_csv(files / "sparse.csv", index=False)
    few, whole = home.many(
        ("monitor", "drift", "api", "--variant", "blue", "--data", files / "sparse.csv"),
        ("monitor", "drift", "api", "--variant", "blue", "--data", files / "current.csv"),
    )
    assert "drift, 1 of 2 features drifted (50%), 2 with too little data;" in few.ok().out
    assert "no_drift, 1 of 4 features drifted (25%);" in whole.ok().out


def test_check_exits_by_the_verdict(home: Any) -> None:
    """--check makes the verdict the exit code (a drift check exited 0 whatever it found, so a
    script could not tell drift from no drift, nor from no data, without parsing JSON)."""
    files: Path = home.files
    home("monitor", "baseline", "churn:1", "--data", files / "base.csv").ok()
    drifted, same, empty, unchecked = home.many(
        ("monitor", "drift", "api", "--variant", "blue", "--data", files / "current.csv",
         "--drift-share", "0.25", "--check"),
        ("monitor", "drift", "api", "--variant", "blue", "--data", files / "base.csv", "--check",
         "--json"),
        ("monitor", "drift", "api", "--window", "30m", "--check"),
        ("monitor", "drift", "api", "--variant", "blue", "--data", files / "current.csv"),
    )  # fmt: skip
    assert drifted.code == 10 and "drift" in drifted.out and drifted.err == ""
    assert same.code == 0 and same.json()[0]["verdict"] == "no_drift"
    assert empty.code == 11 and "insufficient_data" in empty.out
    assert unchecked.ok().code == 0


def test_a_baseline_smaller_than_a_check_needs_is_set_with_a_warning(home: Any) -> None:
    """A baseline of fewer rows than a drift check needs (min_rows, 100 by default) was stored
    without a word, and every later check of the version said insufficient_data."""
    files: Path = home.files
    pd.read_csv(files / "base.csv").head(3).to_csv(files / "tiny.csv", index=False)
    small = home("monitor", "baseline", "churn:2", "--data", files / "tiny.csv")
    assert small.code == 0 and "3 rows" in small.out
    assert "warning: churn:2: the baseline holds 3 row(s)" in small.err
    assert "--min-rows" in small.err and small.err.count("the baseline holds") == 1
    big = home("monitor", "baseline", "churn:2", "--data", files / "base.csv").ok()
    assert "warning" not in big.err
    shown = home("monitor", "baseline", "churn:2").ok()
    assert "3,000 rows" in shown.out and "warning" not in shown.err
