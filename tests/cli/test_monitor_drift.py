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
