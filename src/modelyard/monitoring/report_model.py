"""What a monitoring report shows: plain, frozen records that the page renderer turns into HTML.

The report service fills these from the drift, metrics, feedback and monitor services; the
renderer (:mod:`modelyard.monitoring.report_html`) reads nothing else. Keeping the page's input
this small lets it be rendered, and tested, without a store, and keeps the services' record
types out of the HTML code.

Absent data is explicit: ``None`` (or an empty tuple) means "nothing to show", and the page says
so in words rather than drawing an empty chart. Every string here may come from a user (an
endpoint, variant or feature name, a model name, an issue message): the renderer escapes all of
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class NumericDistribution:
    """Baseline and current shares of one numeric column on shared bins.

    Attributes:
        edges: ``k + 1`` increasing bin edges.
        baseline: ``k`` shares of the baseline's rows per bin (rows outside the edges are
            counted in the first or last bin, so each sums to 1 when the column had values).
        current: ``k`` shares of the current window's rows, on the same bins.
    """

    edges: tuple[float, ...]
    baseline: tuple[float, ...]
    current: tuple[float, ...]


@dataclass(frozen=True)
class CategoricalDistribution:
    """Baseline and current shares of the most frequent categories of one column.

    Attributes:
        categories: Category labels, most frequent first (an ``"other"`` bucket may close it).
        baseline: Share of the baseline's rows per category.
        current: Share of the current window's rows per category.
    """

    categories: tuple[str, ...]
    baseline: tuple[float, ...]
    current: tuple[float, ...]


Distribution = NumericDistribution | CategoricalDistribution


@dataclass(frozen=True)
class FeatureRow:
    """One column's drift result, and the distributions it was computed from.

    Attributes:
        name: Feature name (``"prediction"`` for the model's output).
        test: Name of the test whose effect size decided the verdict (``"ks"``, ``"psi"``…).
        effect_size: That test's effect size; None when it could not be computed.
        threshold: The effect size at or above which the verdict is drift.
        p_value: The test's p-value, when the test has one.
        verdict: ``no_drift``, ``drift`` or ``insufficient_data``.
        baseline_rows: Non-missing baseline rows the test used.
        current_rows: Non-missing current rows the test used.
        distribution: What to plot; None when no sketch was available for the column.
    """

    name: str
    test: str | None
    effect_size: float | None
    threshold: float | None
    p_value: float | None
    verdict: str
    baseline_rows: int
    current_rows: int
    distribution: Distribution | None = None


@dataclass(frozen=True)
class IssueRow:
    """One data-quality issue (missing column, type change, unseen category …)."""

    kind: str
    column: str | None
    message: str


@dataclass(frozen=True)
class Series:
    """One line of a chart: per-minute (or per-window) values, None where there was no data."""

    label: str
    times: tuple[datetime, ...]
    values: tuple[float | None, ...]

    @property
    def has_data(self) -> bool:
        """True when at least one value is present."""
        return any(v is not None for v in self.values)


@dataclass(frozen=True)
class Chart:
    """A chart over time: one or more series, and an optional horizontal reference line.

    Attributes:
        title: The chart's caption.
        unit: The y axis's unit (``"ms"``, ``"requests/min"``).
        series: The lines; a chart none of whose series has data is not drawn.
        reference: A value drawn as a dashed line (the validation metric), or None.
        reference_label: What the reference line is.
        empty_note: What the page says instead of the chart when there is no data.
    """

    title: str
    unit: str
    series: tuple[Series, ...]
    reference: float | None = None
    reference_label: str = ""
    empty_note: str = "no data in this window"

    @property
    def has_data(self) -> bool:
        """True when at least one series has at least one value."""
        return any(s.has_data for s in self.series)


@dataclass(frozen=True)
class QualityRow:
    """One labelled window of model quality: its verdict against validation.

    Attributes:
        start: The window's start (UTC).
        end: The window's end (UTC).
        model: The model version that made the predictions (``name:N``).
        rows: Labelled predictions in the window.
        status: ``ok``, ``degraded``, ``insufficient_data`` or ``no_baseline``.
        degraded: The metrics worse than validation by more than the allowed share.
    """

    start: datetime
    end: datetime
    model: str
    rows: int
    status: str
    degraded: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftSection:
    """One variant's drift result against its model version's baseline.

    Attributes:
        verdict: Dataset verdict (``no_drift``, ``drift``, ``insufficient_data``).
        drifted_share: Share of features whose verdict is drift.
        baseline_rows: Rows in the baseline.
        current_rows: Rows in the current window.
        features: One row per input feature.
        prediction: The model output's row, or None when there was none to compare.
        issues: Data-quality issues found.
    """

    verdict: str
    drifted_share: float | None
    baseline_rows: int
    current_rows: int
    features: tuple[FeatureRow, ...]
    prediction: FeatureRow | None
    issues: tuple[IssueRow, ...] = ()


@dataclass(frozen=True)
class VariantSection:
    """Everything the report shows about one variant of the endpoint.

    Attributes:
        name: Variant name.
        model: The model version it serves (``name:N``).
        weight: Its traffic weight (0 for a shadow).
        shadow: A shadow's sampling: the percentage of production's requests it is sent a copy
            of (it answers none); None for a production variant.
        drift: Its drift result, or None (then ``drift_note`` says why: no baseline, no
            captured data …).
        drift_note: Why there is no drift result.
        charts: Software charts over time (latency, errors, throughput).
        quality: Model-quality charts over time (one per metric), with the validation value as
            the reference line.
        quality_note: What the page says when there is no quality chart.
        quality_windows: The labelled windows' verdicts, oldest first.
        retired_at: When a variant the endpoint no longer serves left its config (it served
            during the window); None for the current config's variants.
    """

    name: str
    model: str
    weight: float
    drift: DriftSection | None
    drift_note: str = "no captured data in this window"
    charts: tuple[Chart, ...] = ()
    quality: tuple[Chart, ...] = ()
    quality_note: str = "no feedback yet"
    quality_windows: tuple[QualityRow, ...] = ()
    shadow: float | None = None
    retired_at: datetime | None = None


@dataclass(frozen=True)
class AlarmRow:
    """One alarm and its current state."""

    name: str
    state: str
    target: str
    since: datetime | None
    reason: str = ""


@dataclass(frozen=True)
class RunRow:
    """One stored monitor run."""

    started_at: datetime
    status: str
    summary: str


@dataclass(frozen=True)
class ReportData:
    """The whole report's content.

    Attributes:
        endpoint: Endpoint name.
        generated_at: When the report was made (UTC).
        window_start: Start of the current window (UTC).
        window_end: End of the current window (UTC).
        variants: One section per variant, in the endpoint's order.
        alarms: Alarm states, or None when alarms are not available to the report.
        runs: Recent monitor runs, or None when they are not available to the report.
        notes: Anything the reader should know about how the report was made.
    """

    endpoint: str
    generated_at: datetime
    window_start: datetime
    window_end: datetime
    variants: tuple[VariantSection, ...]
    alarms: tuple[AlarmRow, ...] | None = None
    runs: tuple[RunRow, ...] | None = None
    notes: tuple[str, ...] = field(default=())
