"""ReportService on real parts: the platform bootstrap builds, a model with a baseline and a
validation accuracy, the serving app (capture and metrics on) answering shifted traffic in this
process, labels sent back as feedback, and the report gathered from what those left in the
stores.

- The variant that served gets drift per feature (the shifted one drifted) with baseline and
  current distributions, its prediction distribution, latency/error/throughput series with the
  requests counted, and accuracy over time against the validation value.
- The variant that served nothing says so in words; the page holds one plot per feature.
- The endpoint's alarm states and its stored monitor runs are listed.
- An unknown endpoint and a bad window are refused before anything is read.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build, serving_app
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig
from modelyard.domain.capture import KeepCapture
from modelyard.domain.drift import DriftConfig
from modelyard.domain.monitors import RunStatus
from modelyard.errors import EndpointNotFound, InvalidInput, StorageNotWritable
from modelyard.monitoring.report_model import NumericDistribution, ReportData
from modelyard.services.ticks import floor_tick
from tests.monitoring.report_pages import assert_self_contained
from tests.serving.asgi_support import lifespan

#: The second feature's name is hostile markup: the page must show it as text.
HOSTILE = '<script>alert("b")</script>'
FEATURES = ["a", HOSTILE]
REQUESTS = 6
HOUR = timedelta(hours=1)
ROWS = 100


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Platform, datetime]:
    """``score:1`` (features ``a`` and :data:`HOSTILE`) on endpoint ``api`` as variants
    ``blue`` (all traffic) and ``green`` (none), after 600 rows with feature ``a`` shifted by 3
    standard deviations, half of them labelled (wrongly, so the accuracy falls below
    validation)."""
    from sklearn.linear_model import LogisticRegression

    home = tmp_path_factory.mktemp("report-service") / "home"
    # A roll of an hour: captured rows are written when the app shuts down.
    platform = build(load_settings({}, home=home, capture_roll_s=3600))
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(rng.normal(size=(2000, 2)), columns=FEATURES)
    model = LogisticRegression().fit(frame, (frame[HOSTILE] > 0).astype(int))
    platform.registry.register(
        "score", model, flavor="sklearn", input_example=frame[:3], metrics={"accuracy": 0.9}
    )
    baseline = home.parent / "baseline.csv"
    frame.to_csv(baseline, index=False)
    platform.drift.set_baseline("score:1", str(baseline))
    capture = CaptureConfig.parse(100)
    platform.endpoints.create(
        "api",
        {"blue": "score:1", "green": "score:1"},
        weights={"blue": 1.0, "green": 0.0},
        capture={"blue": capture, "green": capture},
    )
    answered = asyncio.run(_serve_shifted(platform))
    labels = [
        {"inference_id": iid, "row": row, "label": 1 - int(predicted)}
        for iid, predictions in answered[: REQUESTS // 2]
        for row, predicted in enumerate(predictions)
    ]
    result = platform.feedback.record("api", labels)
    assert result.accepted == len(labels), result.to_dict()
    # A drift schedule that ran once, and an alarm never evaluated yet.
    platform.monitors.schedule("api", every=timedelta(minutes=1), window=timedelta(hours=1))
    tick = floor_tick(datetime.now(UTC), timedelta(minutes=1)) + timedelta(minutes=1)
    (run,) = platform.monitors.run_due(tick)
    assert run.status is RunStatus.SUCCEEDED, run.error
    platform.alarms.create(
        "slow", endpoint="api", metric="latency_p99_ms", comparison=">", threshold=1000
    )
    return platform, tick


async def _serve_shifted(platform: Platform) -> list[tuple[str, list[int]]]:
    rng = np.random.default_rng(12)
    answered = []
    async with lifespan(serving_app(platform.settings)) as client:
        for _ in range(REQUESTS):
            rows = rng.normal(size=(ROWS, 2)) + np.array([3.0, 0.0])
            answer = await client.post(
                "/endpoints/api/invocations",
                json={"instances": [dict(zip(FEATURES, r, strict=True)) for r in rows.tolist()]},
            )
            assert answer.status_code == 200, answer.text
            answered.append(
                (answer.headers["x-modelyard-inference-id"], answer.json()["predictions"])
            )
    return answered


@pytest.fixture(scope="module")
def gathered(served: tuple[Platform, datetime]) -> ReportData:
    platform, now = served
    steps: list[str] = []
    data = platform.reports.gather("api", window=timedelta(hours=1), now=now, progress=steps.append)
    assert any("blue" in s for s in steps) and any("green" in s for s in steps), steps
    return data


def test_the_serving_variant_shows_its_drift_and_distributions(gathered: ReportData) -> None:
    blue = gathered.variants[0]
    assert (blue.name, blue.model, blue.weight) == ("blue", "score:1", 1.0)
    assert blue.drift is not None, blue.drift_note
    assert (blue.drift.baseline_rows, blue.drift.current_rows) == (2000, REQUESTS * ROWS)
    verdicts = {f.name: f.verdict for f in blue.drift.features}
    assert verdicts == {"a": "drift", HOSTILE: "no_drift"}
    for feature in blue.drift.features:
        assert feature.effect_size is not None and feature.p_value is not None
        assert isinstance(feature.distribution, NumericDistribution)
    # The picture shows the shift the test made: a's current mass sits ~3 to the right.
    a = blue.drift.features[0].distribution
    assert isinstance(a, NumericDistribution)
    mids = (np.array(a.edges[1:]) + np.array(a.edges[:-1])) / 2
    assert np.dot(mids, a.current) - np.dot(mids, a.baseline) == pytest.approx(3.0, abs=0.3)
    assert blue.drift.prediction is not None
    assert blue.drift.prediction.distribution is not None


def test_the_serving_variant_shows_its_traffic_and_quality(gathered: ReportData) -> None:
    blue = gathered.variants[0]
    charts = {c.title: c for c in blue.charts}
    assert set(charts) == {"Latency", "Errors", "Throughput"}
    (requests,) = charts["Throughput"].series
    # Per-minute counts; over the minutes that had traffic they add up to what was sent.
    assert sum(v for v in requests.values if v is not None) == REQUESTS
    assert charts["Latency"].has_data
    errors = [v for s in charts["Errors"].series for v in s.values if v is not None]
    assert errors and max(errors) == 0.0
    accuracy = next(c for c in blue.quality if c.unit == "accuracy")
    assert accuracy.reference == 0.9 and accuracy.reference_label == "validation"
    values = [v for s in accuracy.series for v in s.values if v is not None]
    assert values == [0.0]  # every label contradicted its prediction
    (window,) = blue.quality_windows  # the one window that received labels
    assert (window.model, window.rows) == ("score:1", REQUESTS // 2 * ROWS)
    assert window.status == "degraded" and "accuracy" in window.degraded


def test_a_variant_without_traffic_says_so(gathered: ReportData) -> None:
    green = gathered.variants[1]
    assert green.drift is None and green.drift_note == "no captured data in this window"
    charts = {c.title: c for c in green.charts}
    # The server ran and answered nothing on green: zero requests, and no latency at all.
    assert not charts["Latency"].has_data
    (requests,) = charts["Throughput"].series
    assert {v for v in requests.values if v is not None} == {0.0}
    assert green.quality == () and green.quality_note == "no feedback yet"


def test_alarm_states_and_monitor_runs_are_listed(gathered: ReportData) -> None:
    assert gathered.alarms is not None and gathered.runs is not None
    (alarm,) = gathered.alarms
    assert (alarm.name, alarm.state) == ("slow", "INSUFFICIENT_DATA")
    assert alarm.target.startswith("latency_p99_ms max > 1000")
    (run,) = gathered.runs
    # The scheduled check saw the same shift: blue drifted in a; green had no rows.
    assert run.status == "succeeded"
    assert run.summary.startswith("blue: drift: a; green: insufficient data")


def test_the_page_holds_one_plot_per_feature(served: tuple[Platform, datetime]) -> None:
    platform, now = served
    page = platform.reports.report("api", window=timedelta(hours=1), now=now)
    parsed = assert_self_contained(page)
    plots = parsed.find("figure", "feature-plot")
    assert [(p.section, p.attrs["data-feature"]) for p in plots] == [
        ("variant-0", "a"),
        ("variant-0", HOSTILE),
    ]
    assert parsed.words("variant-0").count(HOSTILE) >= 1  # shown as text, never run
    assert len(parsed.in_section("variant-0", "table", "quality")) == 1
    assert "degraded" in parsed.words("variant-0")
    assert "no captured data in this window" in parsed.words("variant-1")


def test_an_unknown_endpoint_or_a_bad_window_is_refused(served: tuple[Platform, datetime]) -> None:
    platform, _ = served
    with pytest.raises(EndpointNotFound, match="nope"):
        platform.reports.report("nope")
    for window, shown in ((timedelta(0), "0s"), (timedelta(days=32), "32d"), (-HOUR, "-1h")):
        with pytest.raises(InvalidInput, match=f"report window .*, got {shown}$"):
            platform.reports.report("api", window=window)


def test_a_report_into_a_missing_folder_is_refused_before_it_is_made(
    served: tuple[Platform, datetime], tmp_path: Path
) -> None:
    platform, _ = served
    steps: list[str] = []
    out = tmp_path / "missing" / "report.html"
    missing = re.escape(str(out.parent))
    with pytest.raises(StorageNotWritable, match=f"folder {missing} does not exist"):
        platform.reports.write("api", out, progress=steps.append)
    assert steps == []  # nothing was gathered


def test_the_drift_section_uses_the_schedules_thresholds(
    served: tuple[Platform, datetime],
) -> None:
    """The page lists the schedule's runs beside its drift section: both check with the same
    thresholds. ``a`` is shifted by 3 standard deviations (KS effect ~0.9): with the
    schedule's KS threshold above that, the section says no drift."""
    platform, now = served
    lenient = DriftConfig(thresholds={"ks": 0.99})
    platform.monitors.schedule("api", every=timedelta(minutes=1), drift_config=lenient)
    try:
        data = platform.reports.gather("api", window=timedelta(hours=1), now=now)
    finally:  # the module's other tests see the schedule as the fixture made it
        platform.monitors.schedule("api", every=timedelta(minutes=1), window=timedelta(hours=1))
    blue = data.variants[0]
    assert blue.drift is not None, blue.drift_note
    a = blue.drift.features[0]
    assert (a.name, a.threshold, a.verdict) == ("a", 0.99, "no_drift")


def test_a_variant_retired_during_the_window_keeps_its_section(
    served: tuple[Platform, datetime],
) -> None:
    """Promoting green (blue leaves the config) must not take blue's window from the page:
    its drift, traffic and quality were read from the current config's variants only, so a
    canary's history vanished at its promotion. Blue is listed after the current variants,
    saying when it left."""
    from modelyard.monitoring.report_html import render_report

    platform, now = served
    platform.endpoints.update("api", {"green": "score:1"}, capture=KeepCapture())
    try:
        data = platform.reports.gather("api", window=timedelta(hours=1), now=now)
        page = render_report(data)
    finally:  # the module's other tests see the endpoint as the fixture made it
        platform.endpoints.rollback("api")
    assert [(v.name, v.retired_at is None) for v in data.variants] == [
        ("green", True),
        ("blue", False),
    ]
    blue = data.variants[1]
    assert blue.drift is not None, blue.drift_note
    assert blue.drift.current_rows == REQUESTS * ROWS
    assert blue.quality_windows and blue.quality_windows[0].rows == REQUESTS // 2 * ROWS
    assert "No longer served: it left the endpoint's config at" in page
