"""The report page from report records: self-contained, one plot per feature, escaped,
and honest about what it has no data for."""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta

import pytest

from modelyard.monitoring.report_html import render_report
from modelyard.monitoring.report_model import (
    AlarmRow,
    CategoricalDistribution,
    Chart,
    DriftSection,
    FeatureRow,
    IssueRow,
    NumericDistribution,
    QualityRow,
    ReportData,
    RunRow,
    Series,
    VariantSection,
)
from modelyard.monitoring.report_series import bucketed
from tests.monitoring.report_pages import assert_self_contained, parse

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script>'


def _shares(center: float, edges: list[float]) -> tuple[float, ...]:
    # Normal-shaped shares on the bins: a plausible histogram without randomness.
    mids = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    weights = [math.exp(-((m - center) ** 2) / 2) for m in mids]
    total = sum(weights)
    return tuple(w / total for w in weights)


def _numeric(name: str, shift: float = 0.0, verdict: str = "no_drift") -> FeatureRow:
    edges = [-4 + 8 * i / 30 for i in range(31)]
    dist = NumericDistribution(tuple(edges), _shares(0.0, edges), _shares(shift, edges))
    return FeatureRow(name, "ks", abs(shift) / 3, 0.1, 0.01, verdict, 5000, 800, dist)


def _categorical(name: str) -> FeatureRow:
    categories = ("red", "green", "$blue", "<i>")
    dist = CategoricalDistribution(categories, (0.4, 0.3, 0.2, 0.1), (0.1, 0.2, 0.3, 0.4))
    return FeatureRow(name, "chi_square", 0.3, 0.1, 1e-9, "drift", 5000, 800, dist)


def _minutes(count: int) -> tuple[datetime, ...]:
    return tuple(NOW - timedelta(minutes=count - i) for i in range(count))


def _charts(values: bool = True) -> tuple[Chart, ...]:
    times = _minutes(120)
    data = tuple(float(10 + i % 7) if values and i % 30 else None for i in range(120))
    return (
        Chart("Latency", "ms", (Series("p50", times, data), Series("p99", times, data))),
        Chart("Errors", "errors/min", (Series("errors", times, (None,) * 120),)),
        Chart("Throughput", "requests/min", (Series("requests", times, data),)),
    )


def _quality() -> tuple[Chart, ...]:
    times = _minutes(6)
    values = (0.91, 0.9, 0.92, 0.7, 0.65, 0.6)
    series = (Series("accuracy", times, values),)
    return (Chart("accuracy", "accuracy", series, 0.9, "validation"),)


def _variant(name: str, features: list[FeatureRow], **kw: object) -> VariantSection:
    drift = DriftSection(
        verdict="drift",
        drifted_share=0.1,
        baseline_rows=5000,
        current_rows=800,
        features=tuple(features),
        prediction=_numeric("prediction", 0.5),
        issues=(IssueRow("missing_column", "income", "income is in the baseline only"),),
    )
    windows = (QualityRow(NOW - timedelta(hours=1), NOW, "churn:3", 120, "degraded", ("f1",)),)
    fields: dict[str, object] = {
        "drift": drift,
        "charts": _charts(),
        "quality": _quality(),
        "quality_windows": windows,
    }
    fields.update(kw)
    return VariantSection(name, "churn:3", 0.9, **fields)  # type: ignore[arg-type]


def _report(variants: tuple[VariantSection, ...], endpoint: str = "churn-api") -> ReportData:
    return ReportData(
        endpoint=endpoint,
        generated_at=NOW,
        window_start=NOW - timedelta(hours=2),
        window_end=NOW,
        variants=variants,
        alarms=(AlarmRow("p99-high", "ALARM", "latency_p99_ms max > 250", NOW, "3 of 5"),),
        runs=(RunRow(NOW, "succeeded", "drift in 3 of 30 features"),),
    )


def test_thirty_features_give_one_self_contained_page_with_one_plot_each() -> None:
    features = [_numeric(f"f{i:02d}", shift=0.1 * (i % 5)) for i in range(29)]
    features.append(_categorical("colour"))
    page = render_report(_report((_variant("blue", features),)))

    parsed = assert_self_contained(page)
    plots = parsed.find("figure", "feature-plot")
    assert [p.attrs["data-feature"] for p in plots] == [f.name for f in features]
    assert len(parsed.find("figure", "prediction-plot")) == 1
    assert len(parsed.find("figure", "chart")) == 3  # latency, throughput, accuracy
    # Each figure holds its own inline <svg>; their element ids never clash across figures.
    assert len(parsed.find("svg")) == 30 + 1 + 3
    ids = [t.attrs["id"] for t in parsed.tags if "id" in t.attrs]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    references = set(re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', page))
    assert {r for pair in references for r in pair if r} <= set(ids)
    # The ranking lists every feature, drifted and most moved first, linking to its plot.
    assert len(parsed.in_section("variant-0", "table", "ranking")) == 1
    links = [t.attrs["href"] for t in parsed.in_section("variant-0", "a")]
    assert len(links) == 30 and {link[1:] for link in links} <= set(ids)
    ranked = re.findall(r'<a href="#variant-0-feature-(\d+)">', page)
    assert [features[int(i)].name for i in ranked[:2]] == ["colour", "f04"]
    words = parsed.words()
    for expected in ("churn-api", "churn:3", "2026-03-01 10:00:00 UTC", "ALARM", "p99-high"):
        assert expected in words
    # The all-missing error chart is not drawn; the page says why.
    assert "Errors no data in this window" in words
    assert "churn:3 120 degraded f1" in parsed.words("variant-0")


def test_same_report_renders_the_same_bytes() -> None:
    report = _report((_variant("blue", [_numeric("a", 1.0), _categorical("b")]),))
    assert render_report(report) == render_report(report)


def test_hostile_names_are_shown_as_text_never_as_markup() -> None:
    attribute_breaker = '"><img src=x onerror=alert(1)>'
    features = [_numeric(HOSTILE), _numeric(attribute_breaker)]
    variant = VariantSection(
        HOSTILE,
        f"{HOSTILE}:1",
        1.0,
        _variant(HOSTILE, features).drift,
        charts=(Chart(HOSTILE, HOSTILE, (Series(HOSTILE, _minutes(3), (1.0, 2.0, 3.0)),)),),
    )
    report = _report((variant,), endpoint=HOSTILE)
    report = ReportData(
        **{**report.__dict__, "alarms": (AlarmRow(HOSTILE, HOSTILE, HOSTILE, None, HOSTILE),)}
    )
    page = render_report(report)

    parsed = assert_self_contained(page)  # no <script>, no <img>
    assert not [t for t in parsed.tags if any(a.startswith("on") for a in t.attrs)]
    plots = parsed.find("figure", "feature-plot")
    assert [p.attrs["data-feature"] for p in plots] == [HOSTILE, attribute_breaker]
    # The names reach the reader as the text they are.
    assert parsed.words().count(HOSTILE) >= 6
    assert f"Monitoring report: {HOSTILE}" in parsed.words()


def test_absent_data_is_said_in_words_never_drawn_empty() -> None:
    silent = VariantSection(
        "green",
        "churn:4",
        0.1,
        drift=None,
        drift_note="no captured data in this window",
        charts=_charts(values=False),
        quality=(),
    )
    # Said as it is: the column has sketches, empty on one side (or of two kinds).
    empty = FeatureRow("income", "ks", None, 0.1, None, "insufficient_data", 5000, 0, None)
    unknown = FeatureRow("age", "ks", None, 0.1, None, "insufficient_data", 0, 800, None)
    retyped = FeatureRow("plan", "ks", None, 0.1, None, "insufficient_data", 5000, 800, None)
    sparse = _variant("blue", [empty, unknown, retyped], charts=(), quality=())
    page = render_report(
        ReportData("churn-api", NOW, NOW - timedelta(hours=1), NOW, (sparse, silent), None, ())
    )

    parsed = assert_self_contained(page)
    green = parsed.words("variant-1")
    assert "no captured data in this window" in green
    assert "no metrics in this window" in green
    assert "no feedback yet" in green
    assert parsed.in_section("variant-1", "svg") == []
    blue = parsed.words("variant-0")
    assert "nothing to draw: no value of this column in this window" in blue
    assert "nothing to draw: no value of this column in the baseline" in blue
    assert "of another kind than the baseline's (see data quality)" in blue
    assert "sketch" not in blue
    assert parsed.in_section("variant-0", "figure", "feature-plot") == []
    assert "insufficient data" in blue
    assert "alarm states are not available" in parsed.words("alarms")
    assert "no monitor runs yet" in parsed.words("runs")


def test_an_endpoint_without_variants_still_gives_a_page() -> None:
    page = render_report(ReportData("empty", NOW, NOW - timedelta(hours=1), NOW, ()))
    parsed = assert_self_contained(page)
    assert "this endpoint has no variants" in parsed.words()
    assert parsed.find("svg") == []


@pytest.mark.parametrize("label", ["$", "a$b$c", r"$\frac{$", "50% & <more>"])
def test_labels_with_math_or_markup_characters_are_drawn_as_written(label: str) -> None:
    dist = CategoricalDistribution((label, "x"), (0.5, 0.5), (0.2, 0.8))
    row = FeatureRow("cat", "chi_square", 0.3, 0.1, 0.01, "drift", 10, 10, dist)
    page = render_report(_report((_variant("blue", [row]),)))
    parsed = assert_self_contained(page)
    svg_text = re.findall(r'data-feature="cat"><svg.*?</svg>', page, re.S)[0]
    # matplotlib draws the label's characters literally (escaped in the SVG's XML).
    assert label in parse(svg_text).text
    assert parsed.find("figure", "feature-plot")


def test_categories_in_any_script_are_drawn_without_a_warning() -> None:
    labels = ("北京", "上海", "😀", "\x1b[31mred")
    dist = CategoricalDistribution(labels, (0.4, 0.3, 0.2, 0.1), (0.1, 0.2, 0.3, 0.4))
    row = FeatureRow("city", "chi_square", 0.3, 0.1, 0.01, "drift", 10, 10, dist)
    # matplotlib warned once per glyph its own font lacks (a warning fails the test).
    page = render_report(_report((_variant("blue", [row]),)))

    assert_self_contained(page)
    svg_text = re.findall(r'data-feature="city"><svg.*?</svg>', page, re.S)[0]
    assert set(labels) <= set(parse(svg_text).text)


@pytest.mark.parametrize(
    "edges",
    [
        (-1.7976931348623157e308, 0.0, 1.7976931348623157e308),
        (1.7976914204485442e308, 1.7976931348623157e308),
        (-1.7976931348623157e308, -1.7976914204485442e308),
    ],
)
def test_values_at_the_ends_of_the_float_range_are_drawn(edges: tuple[float, ...]) -> None:
    # One caller's request with 1.8e308 in it made matplotlib's tick placement raise, and with
    # it the whole report.
    shares = (1 / (len(edges) - 1),) * (len(edges) - 1)
    dist = NumericDistribution(edges, shares, shares)
    row = FeatureRow("a", "ks", 0.3, 0.1, 0.01, "drift", 10, 10, dist)
    page = render_report(_report((_variant("blue", [row]),)))  # a warning fails the test

    parsed = assert_self_contained(page)
    assert "a" in [p.attrs["data-feature"] for p in parsed.find("figure", "feature-plot")]
    svg = re.findall(r'data-feature="a"><svg.*?</svg>', page, re.S)[0]
    assert "in units of 1e308" in parse(svg).text


@pytest.mark.parametrize(
    "window", [timedelta(minutes=4), timedelta(hours=4), timedelta(days=3)], ids=str
)
def test_charts_of_any_window_get_a_few_time_ticks(window: timedelta) -> None:
    # 3-5 minutes, hours or days: matplotlib's date locator warned on stderr (a warning fails
    # the test) and fell back to crowded ticks.
    start = NOW - window
    minutes = int(window / timedelta(minutes=1))
    points = ((start + timedelta(minutes=i), float(i % 7)) for i in range(minutes))
    times, values = bucketed(points, start=start, end=NOW, aggregation="sum")
    chart = Chart("Throughput", "requests/min", (Series("requests", times, values),))
    page = render_report(_report((VariantSection("blue", "churn:3", 1.0, None, charts=(chart,)),)))

    assert_self_contained(page)
    svg = re.findall(r'<figure class="chart">.*?</figure>', page, re.S)[0]
    ticks = [t for t in parse(svg).text if re.fullmatch(r"\d\d:\d\d|[A-Z][a-z]{2}(-\d\d)?|\d\d", t)]
    assert 2 <= len(ticks) <= 8, ticks


def test_quality_values_at_the_end_of_the_float_range_are_charted() -> None:
    # A regressor's MAE after one label of 1.8e308 (feedback takes any finite number), against
    # a validation value as large: matplotlib's ticks overflowed and the report failed.
    values = (1.0, 1.7e308, None, 2.0)
    chart = Chart("mae", "mae", (Series("churn:3", _minutes(4), values),), 1.7e308, "validation")
    variant = VariantSection("blue", "churn:3", 1.0, None, quality=(chart,))
    page = render_report(_report((variant,)))

    assert_self_contained(page)
    svg = re.findall(r'<figure class="chart">.*?</figure>', page, re.S)[0]
    assert "mae (in units of 1e308)" in parse(svg).text


def test_one_minute_of_data_is_drawn_across_the_whole_window() -> None:
    times = _minutes(60)  # 11:00 to 11:59
    lone = tuple(3.0 if i == 59 else None for i in range(60))
    chart = Chart("Throughput", "requests/min", (Series("requests", times, lone),))
    variant = VariantSection("blue", "churn:3", 1.0, None, charts=(chart,))
    page = render_report(_report((variant,)))  # a matplotlib warning would fail the test

    assert_self_contained(page)
    svg = re.findall(r'<figure class="chart">.*?</figure>', page, re.S)[0]
    # The time axis spans the hour (ticks every ten or fifteen minutes), not one moment.
    ticks = sorted(set(re.findall(r"\b11:[0-5][0-9]\b", "".join(parse(svg).text))))
    assert len(ticks) >= 3 and ticks[0] <= "11:15" and ticks[-1] >= "11:45", ticks
