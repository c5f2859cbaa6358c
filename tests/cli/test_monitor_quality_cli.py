"""``monitor quality`` through the console script: a window that ends before it starts is
refused by the feedback service's rule alone (its words, after an unknown endpoint is named),
not by a second copy of it in the command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from modelyard.cli.monitor_quality import _table
from modelyard.domain.quality import MetricComparison, QualityPoint, QualityStatus, Task
from tests.cli.conftest import serve_churn


def test_since_after_until_is_refused_by_the_service(
    make_cli: Any, model_files: Any, tmp_path: Path
) -> None:
    cli = serve_churn(make_cli(tmp_path / "home"), model_files, "churn-api")
    backwards = ("--since", "1h", "--until", "2h")
    known, unknown = cli.many(
        ("monitor", "quality", "churn-api", *backwards),
        ("monitor", "quality", "no-such-endpoint", *backwards),
    )
    line = known.error_line(2)
    assert line.startswith("error: since (") and ") must be before until (" in line, line
    assert "--" not in line  # the service's words, which name no flag
    assert "no-such-endpoint" in unknown.error_line(3)


def test_windows_at_the_ends_of_the_calendar_are_scored_not_a_traceback(
    make_cli: Any, model_files: Any, tmp_path: Path
) -> None:
    """The default start (the last 24 windows before --until) and the windows after a start
    were sums past year 9999 or before year 1: OverflowError, a traceback and exit 1."""
    cli = serve_churn(make_cli(tmp_path / "home"), model_files, "churn-api")
    early, late = cli.many(
        ("monitor", "quality", "churn-api", "--window", "1d", "--until", "0001-01-02", "--json"),
        ("monitor", "quality", "churn-api", "--until", "9999-12-31T23:59", "--json"),
    )
    (first,) = early.ok().json()  # the one window there is room for before --until
    assert (first["start"], first["end"]) == (
        "0001-01-01T00:00:00+00:00",
        "0001-01-02T00:00:00+00:00",
    )
    points = late.ok().json()
    assert len(points) == 24 and points[-1]["end"] == "9999-12-31T23:59:00+00:00"
    assert {p["status"] for p in points} == {"insufficient_data"}


def test_large_errors_are_shown_in_powers_of_ten() -> None:
    """Feedback takes any finite label: one of 1e200 made an RMSE printed in its 200 digits."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    point = QualityPoint(
        "house-api", "main", "house:1", start, start + timedelta(hours=1), Task.REGRESSION, 3,
        {"rmse": 5.773502691896258e199, "mae": 3.3333333333333334e199},
        (MetricComparison("rmse", 5.773502691896258e199, 2.5e7, 2.3e192, True),),
        QualityStatus.DEGRADED,
    )  # fmt: skip
    console = Console(record=True, width=200, color_system=None)
    console.print(_table("house-api", Task.REGRESSION, [point], timedelta(hours=1)))
    shown = console.export_text()
    assert "5.774e+199 (2.5e+07)" in shown and "3.333e+199" in shown, shown
    assert "0000000" not in shown


def test_a_terminal_of_80_columns_cuts_no_verdict_time_name_or_value() -> None:
    """Rich shrinks every column of a table wider than the terminal: at 80 columns the table
    read ``2026…``, ``chur…``, ``(0.9…`` and ``insu…`` / ``degr…`` (at 100, ``insuffi…``), so
    the verdict, the window and the validation value a metric is held against were gone.
    Every cell is shown whole, whatever the width (the table may be wider than the screen)."""
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    end = start + timedelta(hours=1)
    metrics = {"accuracy": 0.5, "precision": 0.333, "recall": 0.389, "f1": 0.348, "roc_auc": None}
    points = [
        QualityPoint(
            "churn-api", "main", "churnclf:12", start, end, Task.CLASSIFICATION, 40, metrics,
            (MetricComparison("accuracy", 0.5, 0.95, 0.47, True),
             MetricComparison("f1", 0.348, 0.9, 0.61, True)),
            QualityStatus.DEGRADED,
        ),
        QualityPoint(
            "churn-api", "canary-green", "churnclf:13", start, end, Task.CLASSIFICATION, 0,
            dict.fromkeys(metrics), (), QualityStatus.INSUFFICIENT_DATA,
        ),
    ]  # fmt: skip
    for width in (80, 100):
        # As the CLI's console (cli/render.py): lines longer than the terminal are not cut.
        console = Console(record=True, width=width, color_system=None, soft_wrap=True)
        console.print(_table("churn-api", Task.CLASSIFICATION, points, timedelta(hours=1)))
        shown = console.export_text()
        for whole in (
            "2026-03-01 10:00", "canary-green", "churnclf:12", "churnclf:13", "0.500 (0.950)",
            "0.348 (0.900)", "degraded", "insufficient_data", "precision", "accuracy",
        ):  # fmt: skip
            assert whole in shown, f"{whole!r} cut at {width} columns:\n{shown}"
        assert "…" not in shown, shown
