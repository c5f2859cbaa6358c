"""``monitor report NAME -o FILE`` through the installed console script on a real store: the
file is one self-contained page with the endpoint's series drawn and its missing parts named;
refusals (unknown endpoint, bad window, unwritable file, an existing file without
``--overwrite``) are one error line and write nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelyard import errors
from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import SeriesRow
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.metric_store import SqlMetricStore
from tests.monitoring.report_pages import assert_self_contained

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, make_cli: Any, model_files: Any) -> Any:
    """Endpoint ``churn-api`` (variant ``blue`` serving ``churn:1``, which has a baseline)
    with 30 minutes of series as a server worker writes them, and no captured rows."""
    folder = tmp_path_factory.mktemp("monitor-report")
    cli = make_cli(folder / "home")
    platform = cli.platform()
    try:
        platform.registry.register(
            "churn", model_files.xgb_json, flavor="xgboost", input_example=model_files.example
        )
        data = folder / "baseline.csv"
        model_files.frame.to_csv(data, index=False)
        platform.drift.set_baseline("churn:1", str(data))
        platform.endpoints.create("churn-api", {"blue": "churn:1"})
        engine = make_engine(platform.settings.resolved_db_url)
        rows = [
            SeriesRow(
                "churn-api",
                "blue",
                NOW - timedelta(minutes=ago),
                60,
                "web:1:1",
                MetricStats({"requests": 10 + ago, "errors": ago % 3, "latency_s": 0.5}),
            )
            for ago in range(1, 31)
        ]
        SqlMetricStore(engine).write(rows)
        engine.dispose()
    finally:
        platform.close()
    return cli


def test_the_report_is_written_as_one_self_contained_page(home: Any, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("an older report")
    kept = home("monitor", "report", "churn-api", "--window", "2h", "-o", target)
    assert kept.error_line(errors.AlreadyExists.exit_code) == (
        f"error: {target} already exists; pass --overwrite to replace it"
    )
    assert "--overwrite" in home("monitor", "report", "--help").ok().out
    assert target.read_text() == "an older report"
    done = home(
        "monitor", "report", "churn-api", "--window", "2h", "-o", target, "--overwrite"
    ).ok()

    assert str(target) in done.out and "churn-api" in done.out
    page = target.read_text(encoding="utf-8")
    parsed = assert_self_contained(page)
    words = parsed.words()
    assert "Monitoring report: churn-api" in words
    assert "blue" in words and "churn:1" in words
    variant = parsed.words("variant-0")
    assert "no captured data in this window" in variant
    assert "no feedback yet" in variant
    captions = [t for t in parsed.in_section("variant-0", "figure", "chart")]
    assert len(captions) == 2  # throughput and errors were written; latency has no buckets
    assert "Latency no data in this window" in variant
    assert "no alarms are defined on this endpoint" in parsed.words("alarms")
    # Written whole, by a rename: nothing else is left in the folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_refusals_write_nothing(home: Any, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    unknown, bad_window, too_long, unwritable = home.many(
        ("monitor", "report", "no-such-endpoint", "-o", target),
        ("monitor", "report", "churn-api", "--window", "soon", "-o", target),
        ("monitor", "report", "churn-api", "--window", "40d", "-o", target),
        ("monitor", "report", "churn-api", "-o", tmp_path / "missing" / "report.html"),
    )
    assert "no-such-endpoint" in unknown.error_line(3)
    assert "soon" in bad_window.error_line(2)
    assert too_long.error_line(2).endswith("at most 31 days, got 40d")
    assert str(tmp_path / "missing" / "report.html") in unwritable.error_line(6)
    assert list(tmp_path.iterdir()) == []


def test_a_report_inside_the_capture_root_is_refused(home: Any) -> None:
    """Retention deletes an hour's folder whole: a report written there would go with it."""
    platform = home.platform()
    try:
        root = Path(platform.settings.resolved_capture_url)
    finally:
        platform.close()
    hour = root / "churn-api" / "date=2026-12-06" / "hour=10"
    refused = home("monitor", "report", "churn-api", "-o", hour / "report.html")
    assert "is inside the capture root" in refused.error_line(2)
    assert "a report there" in refused.err
    assert not hour.exists()


def test_the_report_goes_to_an_fsspec_url(home: Any, tmp_path: Path) -> None:
    """``-o`` takes a URL as it is (a path type turned ``local:///x`` into ``local:/x``)."""
    url = f"local://{tmp_path / 'by-url.html'}"
    done = home("monitor", "report", "churn-api", "--window", "2h", "-o", url).ok()
    assert url in done.out
    assert_self_contained((tmp_path / "by-url.html").read_text(encoding="utf-8"))
