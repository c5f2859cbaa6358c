"""The other services' records turned into the report's (:mod:`report_model`): a drift report
with the profiles it compared, metric series, quality points, alarm states and monitor runs.

Pure conversions: no store is read here. What a record lacks stays absent (None, an empty
tuple, or a note saying why), so the page can say so rather than draw an empty chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from modelyard.domain.alarms import AlarmStatus
from modelyard.domain.drift import DriftReport, FeatureDrift
from modelyard.domain.metrics import METRICS, MetricPoint
from modelyard.domain.monitors import MonitorRun
from modelyard.domain.quality import QualityPoint
from modelyard.monitoring.report_distributions import column_distribution
from modelyard.monitoring.report_model import (
    AlarmRow,
    Chart,
    DriftSection,
    FeatureRow,
    IssueRow,
    QualityRow,
    RunRow,
    Series,
)
from modelyard.monitoring.report_series import bucketed

if TYPE_CHECKING:
    from modelyard.monitoring.profile import Profile


@dataclass(frozen=True)
class ChartSpec:
    """A software chart: its title, unit, and its lines as ``(label, metric series name)``."""

    title: str
    unit: str
    series: tuple[tuple[str, str], ...]


#: The software charts of each variant: latency, errors and throughput.
CHARTS = (
    ChartSpec("Latency", "ms", (("p50", "latency_p50_ms"), ("p99", "latency_p99_ms"))),
    ChartSpec("Errors", "errors per minute", (("errors", "errors"), ("5xx", "server_errors"))),
    ChartSpec("Throughput", "requests per minute", (("requests", "requests"),)),
)
#: Every metric series the charts read.
CHART_METRICS = tuple(metric for chart in CHARTS for _, metric in chart.series)
#: Monitor runs whose drifted features a run's summary names.
_NAMED_FEATURES = 5


def drift_section(report: DriftReport, baseline: Profile, current: Profile) -> DriftSection:
    """A variant's drift section: ``report``, and the distributions of the ``baseline`` and
    ``current`` profiles it was computed from."""
    prediction = None
    if report.predictions and baseline.predictions and current.predictions:
        # Several output columns (class probabilities): the one that moved most.
        moved = max(report.predictions, key=lambda p: p.effect or 0.0)
        prediction = feature_row(moved, baseline.predictions, current.predictions)
    return DriftSection(
        verdict=report.verdict.value,
        drifted_share=report.drifted_share,
        baseline_rows=report.baseline_rows,
        current_rows=report.current_rows,
        features=tuple(feature_row(f, baseline, current) for f in report.features),
        prediction=prediction,
        issues=tuple(IssueRow(q.check, q.column, q.message) for q in report.quality),
    )


def feature_row(result: FeatureDrift, baseline: Profile, current: Profile) -> FeatureRow:
    """One column's scores, with its distributions read from the two profiles."""
    return FeatureRow(
        name=result.name,
        test=result.test,
        effect_size=result.effect,
        threshold=result.threshold,
        p_value=result.p_value,
        verdict=result.verdict.value,
        baseline_rows=result.baseline_rows,
        current_rows=result.current_rows,
        distribution=column_distribution(baseline, current, result.name, result.kind),
    )


def metric_charts(
    table: Mapping[str, Sequence[MetricPoint]], start: datetime, end: datetime
) -> tuple[Chart, ...]:
    """The :data:`CHARTS` of one variant from its per-minute series (``MetricsService.table``
    of :data:`CHART_METRICS`), each cut to a chart's width by its series' aggregation."""
    charts = []
    for spec in CHARTS:
        lines = []
        for label, metric in spec.series:
            points = ((p.minute, p.value) for p in table.get(metric, ()))
            aggregation = METRICS[metric].aggregation
            times, values = bucketed(points, start=start, end=end, aggregation=aggregation)
            lines.append(Series(label, times, values))
        charts.append(Chart(spec.title, spec.unit, tuple(lines)))
    return tuple(charts)


def quality_charts(points: Sequence[QualityPoint]) -> tuple[tuple[Chart, ...], str]:
    """One variant's model quality over time: a chart per metric that has a value somewhere
    (a line per model version, the validation value as the reference line); or, without
    any, why not.

    Args:
        points: The variant's quality points, oldest first.
    """
    labelled = [p for p in points if p.rows > 0]
    if not labelled:
        return (), "no feedback yet"
    names = list(dict.fromkeys(n for p in labelled for n, v in p.metrics.items() if v is not None))
    if not names:
        return (), "feedback arrived, but no quality metric could be computed from it"
    by_model: dict[str, list[QualityPoint]] = {}
    for point in points:
        by_model.setdefault(point.model, []).append(point)
    rows = sum(p.rows for p in labelled)
    charts = []
    for name in names:
        series = tuple(
            Series(model, tuple(p.start for p in mine), tuple(p.metrics.get(name) for p in mine))
            for model, mine in by_model.items()
        )
        # The newest version's validation value (every point of one version carries the same).
        references = [c.baseline for p in points for c in p.comparisons if c.name == name]
        reference = references[-1] if references else None
        charts.append(
            Chart(
                f"{name} ({rows:,} labelled rows)",
                name,
                series,
                reference=reference,
                reference_label="validation" if reference is not None else "",
                empty_note="no labelled rows in this window",
            )
        )
    return tuple(charts), ""


def quality_rows(points: Sequence[QualityPoint]) -> tuple[QualityRow, ...]:
    """The verdicts of the windows that received labels (a window without any has none)."""
    return tuple(
        QualityRow(p.start, p.end, p.model, p.rows, p.status.value, tuple(p.degraded))
        for p in points
        if p.rows > 0
    )


def alarm_row(status: AlarmStatus) -> AlarmRow:
    """An alarm's name, state, rule in words, since when, and why."""
    return AlarmRow(
        status.rule.name, status.state.value, status.rule.condition, status.since, status.reason
    )


def run_row(run: MonitorRun) -> RunRow:
    """A monitor run: when, how it ended, and per variant its verdict and drifted features."""
    if run.error:
        return RunRow(run.started_at, run.status.value, run.error)
    parts = []
    for report in run.reports:
        variant = report.get("variant") or "-"
        verdict = str(report.get("verdict", "?")).replace("_", " ")
        drifted = [str(d) for d in report.get("drifted") or ()]
        shown = f": {', '.join(drifted[:_NAMED_FEATURES])}" if drifted else ""
        more = (
            f" and {len(drifted) - _NAMED_FEATURES} more" if len(drifted) > _NAMED_FEATURES else ""
        )
        parts.append(f"{variant}: {verdict}{shown}{more}")
    return RunRow(run.started_at, run.status.value, "; ".join(parts) or "no report")
