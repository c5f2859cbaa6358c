"""``monitor metrics NAME`` through the installed console script on a real store holding series
as server workers write them: JSON points per minute (workers merged, gaps as null), a terminal
chart per series, and refusals (unknown series, endpoint, time) as one error line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import SeriesRow
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.metric_store import SqlMetricStore
from tests.e2e.conftest import free_port

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
# Absolute windows: the module's rows are written once, and a test may run minutes later.
SINCE_10 = (NOW - timedelta(minutes=10)).isoformat()
SINCE_15 = (NOW - timedelta(minutes=15)).isoformat()
UNTIL = (NOW + timedelta(minutes=1)).isoformat()
LARGEST = 1.7976931348623157e308


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """Endpoint ``churn-api`` with 10 minutes of series from two workers, the minute 4 minutes
    ago silent, feature ``spend`` at the largest float and its negative in turn."""
    cli = make_cli(tmp_path_factory.mktemp("monitor-metrics") / "home")
    platform = cli.platform()
    try:
        platform.registry.register(
            "churn", model_files.xgb_json, flavor="xgboost", input_example=model_files.example
        )
        platform.endpoints.create("churn-api", {"blue": "churn:1"})
        engine = make_engine(platform.settings.resolved_db_url)
        rows = [
            SeriesRow(
                "churn-api",
                "blue",
                NOW - timedelta(minutes=ago),
                60,
                worker,
                MetricStats(
                    {
                        "requests": ago * 10 + n,
                        "errors": n,
                        "in.n.age": 5,
                        "in.sum.age": 200,
                    }
                    # A caller's values at the ends of the float range, a minute each.
                    | (
                        {"in.n.spend": 1, "in.sum.spend": LARGEST if ago % 2 else -LARGEST}
                        if n == 1
                        else {}
                    )
                ),
            )
            for ago in range(1, 11)
            if ago != 4
            for worker, n in (("web:1:1", 1), ("web:2:1", 2))
        ]
        SqlMetricStore(engine).write(rows)
        engine.dispose()
    finally:
        platform.close()
    return cli


def test_json_points_per_minute(home: Any) -> None:
    answer = home(
        "monitor", "metrics", "churn-api", "--since", SINCE_10, "--until", UNTIL, "-m", "requests",
        "-m", "input_mean.age", "-m", "error_rate", "--json",
    ).ok().json()  # fmt: skip
    assert (answer["endpoint"], answer["variant"]) == ("churn-api", None)
    requests = answer["series"]["requests"]
    assert (requests["unit"], requests["aggregation"]) == ("requests", "sum")
    by_minute = {p["minute"]: p["value"] for p in requests["points"]}
    for ago in range(1, 11):
        minute = (NOW - timedelta(minutes=ago)).isoformat()
        assert by_minute[minute] == (None if ago == 4 else 2 * ago * 10 + 3), ago
    means = [p["value"] for p in answer["series"]["input_mean.age"]["points"] if p["value"]]
    assert means and set(means) == {40.0}
    rates = {p["minute"]: p["value"] for p in answer["series"]["error_rate"]["points"]}
    assert rates[(NOW - timedelta(minutes=1)).isoformat()] == pytest.approx(3 / 23)


def test_a_chart_per_series(home: Any) -> None:
    shown = home(
        "monitor", "metrics", "churn-api", "--since", SINCE_15, "--until", UNTIL,
        "--variant", "blue",
    ).ok().out  # fmt: skip
    assert "churn-api (variant blue)" in shown
    lines = shown.splitlines()
    title = next(line for line in lines if line.startswith("requests (requests)"))
    assert f"total {sum(2 * a * 10 + 3 for a in range(1, 11) if a != 4):,}" in title
    assert "peak 203/min" in title
    assert any("│" in line and "█" in line for line in lines)
    assert any(line.startswith("latency_p99_ms (ms) — no data") for line in lines)


def test_a_series_spanning_the_whole_float_range_is_charted(home: Any) -> None:
    shown = home(
        "monitor", "metrics", "churn-api", "--since", SINCE_15, "--until", UNTIL,
        "--variant", "blue", "-m", "input_mean.spend",
    ).ok().out  # fmt: skip
    lines = shown.splitlines()
    title = next(line for line in lines if line.startswith("input_mean.spend (value)"))
    assert "max 1.8e+308" in title and "min -1.8e+308" in title
    rows = [line.split("│", 1)[1] for line in lines if "│" in line]
    assert len(rows) == 6 and "█" in rows[0] and "█" in rows[-1]


def test_a_short_window_keeps_its_two_times_apart(home: Any) -> None:
    since, until = NOW - timedelta(minutes=3), NOW - timedelta(minutes=1)
    shown = home(
        "monitor", "metrics", "churn-api", "--since", since.isoformat(),
        "--until", until.isoformat(), "-m", "requests",
    ).ok().out  # fmt: skip
    (axis,) = [line for line in shown.splitlines() if "└" in line]
    # Three columns are fewer than the two times need: they used to run together (11:2011:22).
    first, last = axis.split("└")[1].split()
    assert first == f"{since:%H:%M}" and last == f"{until - timedelta(minutes=1):%H:%M}", axis


def test_series_names_are_listed(home: Any) -> None:
    listed = home("monitor", "metrics", "churn-api", "--list", "--json").ok().json()
    assert listed["input_mean"]["qualifier"] == "feature"
    assert "latency_p99_ms" in home("monitor", "metrics", "--list").ok().out


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("churn-api", "-m", "latency"), 2, "unknown metric 'latency'"),
        (("churn-api", "-m", "input_mean"), 2, "needs a feature"),
        (("churn-api", "--since", "yesterday"), 2, "not a time: 'yesterday'"),
        (("nope",), 3, "endpoint 'nope' does not exist and has no metrics"),
    ],
)
def test_refusals(home: Any, args: tuple[str, ...], code: int, says: str) -> None:
    line = home("monitor", "metrics", *args).error_line(code)
    assert says in line


def test_serve_refuses_a_metrics_folder_it_cannot_make(home: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = home.env(MODELYARD_METRICS_DIR=str(blocker / "metrics"))
    line = home("serve", "--port", str(free_port()), "--no-monitors", env=env).error_line(6)
    assert f"cannot create a metrics folder in {blocker / 'metrics'}" in line
