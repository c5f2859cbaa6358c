"""The monitoring report page: one self-contained HTML document from a :class:`ReportData`.

The page needs no network to open: its CSS is inline, its figures are inline SVG
(:mod:`modelyard.monitoring.report_plots`), and it has no script, link, font or image reference.
Every string that came from a user or a store (endpoint, variant, model and feature names, issue
messages, alarm reasons) is escaped with :func:`html.escape` before it reaches the page. A
section without data says so in words instead of drawing an empty chart.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from datetime import datetime

from modelyard.monitoring.report_model import (
    AlarmRow,
    Chart,
    DriftSection,
    FeatureRow,
    IssueRow,
    QualityRow,
    ReportData,
    RunRow,
    VariantSection,
)
from modelyard.monitoring.report_plots import (
    BASELINE_COLOR,
    CURRENT_COLOR,
    chart_svg,
    distribution_svg,
)

#: Called with a short description before each slow step (each figure), for a progress display.
Progress = Callable[[str], None]

#: Verdicts and alarm states → the CSS class of their badge (anything else: "unknown").
_BADGES = {
    "no_drift": "ok",
    "ok": "ok",
    "drift": "bad",
    "alarm": "bad",
    "insufficient_data": "na",
    "degraded": "bad",
    "no_baseline": "na",
    "succeeded": "ok",
    "failed": "bad",
}

_CSS = f"""
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 1200px; padding: 1rem 1.5rem 3rem; color: #222; line-height: 1.4; }}
h1 {{ font-size: 1.5rem; margin-bottom: .2rem; }}
h2 {{ font-size: 1.25rem; border-bottom: 2px solid #ddd; padding-bottom: .2rem;
  margin-top: 2.5rem; }}
h3 {{ font-size: 1.05rem; margin-top: 1.6rem; }}
table {{ border-collapse: collapse; font-size: .85rem; }}
th, td {{ border: 1px solid #ddd; padding: .2rem .5rem; text-align: left;
  vertical-align: top; }}
th {{ background: #f4f4f4; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
dl.meta {{ display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem; }}
dl.meta dt {{ font-weight: 600; }}
dl.meta dd {{ margin: 0; }}
.badge {{ display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: .8rem;
  font-weight: 600; }}
.badge.ok {{ background: #dff0d8; color: #2b542c; }}
.badge.bad {{ background: #f2dede; color: #a94442; }}
.badge.na {{ background: #fcf8e3; color: #8a6d3b; }}
.badge.unknown {{ background: #eee; color: #555; }}
.empty {{ color: #666; font-style: italic; }}
.features {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr));
  gap: 1rem; }}
.pair {{ display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-start; }}
.pair figure {{ flex: 1 1 300px; }}
.feature {{ border: 1px solid #e4e4e4; border-radius: 4px; padding: .5rem; }}
.feature h4 {{ margin: 0 0 .3rem; font-size: .95rem; overflow-wrap: anywhere; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
figure {{ margin: 0; }}
figcaption {{ font-size: .85rem; font-weight: 600; }}
svg {{ max-width: 100%; height: auto; }}
.key span {{ display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 .8rem;
  vertical-align: middle; }}
.key .baseline {{ background: {BASELINE_COLOR}; opacity: .6; }}
.key .current {{ background: {CURRENT_COLOR}; }}
"""


def render_report(data: ReportData, progress: Progress | None = None) -> str:
    """The report as one HTML document.

    Args:
        data: What to show.
        progress: Called before each figure is drawn (figures are the slow part).

    Returns:
        The page, ready to be written to a ``.html`` file (UTF-8).
    """
    page = _Page(progress or (lambda _step: None))
    title = f"Monitoring report: {data.endpoint}"
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
    )
    parts = [head, _header(data)]
    parts.append(_alarms(data.alarms))
    for index, variant in enumerate(data.variants):
        parts.append(page.variant(index, variant))
    parts.append(_runs(data.runs))
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _num(value: float | None, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec)


def _share(variant: VariantSection) -> str:
    """A production variant's weight; a shadow's sampling, said as such (its weight is 0); a
    retired variant's retirement."""
    if variant.retired_at is not None:
        return f"retired {_e(_when(variant.retired_at))}"
    if variant.shadow is None:
        return _num(variant.weight, ".3g")
    return f"shadow {variant.shadow:g}%"


def _badge(value: str) -> str:
    css = _BADGES.get(value.lower(), "unknown")
    return f'<span class="badge {css}">{_e(value.replace("_", " "))}</span>'


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>\n'


def _header(data: ReportData) -> str:
    rows = "".join(
        f'<tr><td><a href="#variant-{i}">{_e(v.name)}</a></td><td>{_e(v.model)}</td>'
        f'<td class="num">{_share(v)}</td></tr>'
        for i, v in enumerate(data.variants)
    )
    variants = (
        f"<table><tr><th>variant</th><th>model version</th><th>weight</th></tr>{rows}</table>"
        if data.variants
        else _empty("this endpoint has no variants")
    )
    notes = "".join(f"<li>{_e(n)}</li>" for n in data.notes)
    return (
        f'<header>\n<h1>Monitoring report: {_e(data.endpoint)}</h1>\n<dl class="meta">'
        f"<dt>endpoint</dt><dd>{_e(data.endpoint)}</dd>"
        f"<dt>window</dt><dd>{_e(_when(data.window_start))} to {_e(_when(data.window_end))}</dd>"
        f"<dt>generated at</dt><dd>{_e(_when(data.generated_at))}</dd></dl>\n"
        f"{variants}\n" + (f"<ul>{notes}</ul>\n" if notes else "") + "</header>\n"
    )


def _alarms(alarms: tuple[AlarmRow, ...] | None) -> str:
    out = '<section id="alarms">\n<h2>Alarms</h2>\n'
    if alarms is None:
        return out + _empty("alarm states are not available") + "</section>\n"
    if not alarms:
        return out + _empty("no alarms are defined on this endpoint") + "</section>\n"
    rows = "".join(
        f"<tr><td>{_e(a.name)}</td><td>{_badge(a.state)}</td><td>{_e(a.target)}</td>"
        f"<td>{_e(_when(a.since))}</td><td>{_e(a.reason)}</td></tr>"
        for a in alarms
    )
    header = "<tr><th>alarm</th><th>state</th><th>on</th><th>since</th><th>reason</th></tr>"
    return out + f"<table>{header}{rows}</table>\n</section>\n"


def _runs(runs: tuple[RunRow, ...] | None) -> str:
    out = '<section id="runs">\n<h2>Monitor runs</h2>\n'
    if runs is None:
        return out + _empty("monitor runs are not available") + "</section>\n"
    if not runs:
        return out + _empty("no monitor runs yet") + "</section>\n"
    rows = "".join(
        f"<tr><td>{_e(_when(r.started_at))}</td><td>{_badge(r.status)}</td>"
        f"<td>{_e(r.summary)}</td></tr>"
        for r in runs
    )
    header = "<tr><th>started</th><th>status</th><th>result</th></tr>"
    return out + f"<table>{header}{rows}</table>\n</section>\n"


def _quality_windows(rows: tuple[QualityRow, ...]) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{_e(_when(r.start))}</td><td>{_e(_when(r.end))}</td><td>{_e(r.model)}</td>"
        f'<td class="num">{r.rows:,}</td><td>{_badge(r.status)}</td>'
        f"<td>{_e(', '.join(r.degraded) or '—')}</td></tr>"
        for r in rows
    )
    header = (
        "<tr><th>from</th><th>to</th><th>model version</th><th>labelled rows</th>"
        "<th>verdict</th><th>worse than validation</th></tr>"
    )
    return f'<table class="quality">{header}{body}</table>\n'


def _issues(issues: tuple[IssueRow, ...]) -> str:
    if not issues:
        return _empty("no data-quality issues found")
    rows = "".join(
        f"<tr><td>{_e(i.kind.replace('_', ' '))}</td><td>{_e(i.column or '—')}</td>"
        f"<td>{_e(i.message)}</td></tr>"
        for i in issues
    )
    return f"<table><tr><th>issue</th><th>column</th><th>detail</th></tr>{rows}</table>\n"


#: Verdicts in the order the ranking lists them: what needs a look first.
_RANK = {"drift": 0, "no_drift": 1, "insufficient_data": 2}


def _ranking(features: tuple[FeatureRow, ...], anchors: list[str]) -> str:
    """Every feature in one table, drifted and most moved first, each linking to its plot."""
    order = sorted(
        range(len(features)),
        key=lambda i: (_RANK.get(features[i].verdict, 3), -(features[i].effect_size or 0.0)),
    )
    body = "".join(
        f'<tr><td><a href="#{anchors[i]}">{_e(f.name)}</a></td><td>{_badge(f.verdict)}</td>'
        f'<td>{_e(f.test or "—")}</td><td class="num">{_num(f.effect_size)}</td>'
        f'<td class="num">{_num(f.threshold)}</td><td class="num">{_num(f.p_value, ".3g")}</td>'
        f'<td class="num">{f.baseline_rows:,}</td><td class="num">{f.current_rows:,}</td></tr>'
        for i in order
        for f in (features[i],)
    )
    header = (
        "<tr><th>feature</th><th>verdict</th><th>test</th><th>effect size</th>"
        "<th>threshold</th><th>p-value</th><th>baseline rows</th><th>current rows</th></tr>"
    )
    return f'<table class="ranking">{header}{body}</table>\n'


def _scores(row: FeatureRow) -> str:
    cells = (
        ("verdict", _badge(row.verdict)),
        ("test", _e(row.test or "—")),
        ("effect size", _num(row.effect_size)),
        ("threshold", _num(row.threshold)),
        ("p-value", _num(row.p_value, ".3g")),
        ("baseline rows", f"{row.baseline_rows:,}"),
        ("current rows", f"{row.current_rows:,}"),
    )
    body = "".join(f'<tr><th>{name}</th><td class="num">{value}</td></tr>' for name, value in cells)
    return f'<table class="scores">{body}</table>'


def _no_picture(row: FeatureRow) -> str:
    """Why a column has no distribution to draw, in the reader's words."""
    if not row.current_rows:
        return "nothing to draw: no value of this column in this window"
    if not row.baseline_rows:
        return "nothing to draw: no value of this column in the baseline"
    return "nothing to draw: its values are of another kind than the baseline's (see data quality)"


class _Page:
    """Renders the figure-bearing sections, numbering figures so their SVG ids are unique."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._figures = 0

    def _salt(self) -> str:
        self._figures += 1
        return f"fig{self._figures}"

    def variant(self, index: int, variant: VariantSection) -> str:
        parts = [
            f'<section class="variant" id="variant-{index}">\n'
            f"<h2>Variant {_e(variant.name)}: {_e(variant.model)}</h2>\n"
        ]
        if variant.retired_at is not None:
            parts.append(
                f"<p>No longer served: it left the endpoint's config at "
                f"{_e(_when(variant.retired_at))}; what it served in this window is shown.</p>\n"
            )
        if variant.shadow is not None:
            parts.append(
                f"<p>A shadow variant: it answers no request, and is sent a copy of "
                f"{variant.shadow:g}% of the requests the production variants answer.</p>\n"
            )
        parts.append("<h3>Drift</h3>\n")
        if variant.drift is None:
            parts.append(_empty(variant.drift_note))
        else:
            parts.extend(self._drift(index, variant.name, variant.drift))
        parts.append("<h3>Latency, errors and throughput</h3>\n")
        parts.append(self._charts(variant.name, variant.charts, "no metrics in this window"))
        parts.append("<h3>Model quality</h3>\n")
        parts.append(self._charts(variant.name, variant.quality, variant.quality_note))
        parts.append(_quality_windows(variant.quality_windows))
        parts.append("</section>\n")
        return "".join(parts)

    def _drift(self, index: int, variant: str, drift: DriftSection) -> Iterator[str]:
        share = "—" if drift.drifted_share is None else f"{drift.drifted_share:.0%}"
        yield (
            f"<p>Dataset verdict {_badge(drift.verdict)}: {share} of features drifted; "
            f"{drift.baseline_rows:,} baseline rows, {drift.current_rows:,} current rows.</p>\n"
            '<p class="key">baseline<span class="baseline"></span>'
            'current<span class="current"></span></p>\n'
        )
        yield "<h4>Data quality</h4>\n"
        yield _issues(drift.issues)
        yield "<h4>Predictions</h4>\n"
        if drift.prediction is None:
            yield _empty("no predictions to compare with the baseline")
        else:
            plot = self._feature(variant, drift.prediction, "prediction-plot", None)
            yield f'<div class="features">{plot}</div>\n'
        yield f"<h4>Features ({len(drift.features)})</h4>\n"
        if not drift.features:
            yield _empty("the baseline has no input features")
            return
        anchors = [f"variant-{index}-feature-{i}" for i in range(len(drift.features))]
        yield _ranking(drift.features, anchors)
        yield '<div class="features">\n'
        for row, anchor in zip(drift.features, anchors, strict=True):
            yield self._feature(variant, row, "feature-plot", anchor)
        yield "</div>\n"

    def _feature(self, variant: str, row: FeatureRow, css: str, anchor: str | None) -> str:
        if row.distribution is None:
            figure = _empty(_no_picture(row))
        else:
            self._progress(f"plotting {variant}/{row.name}")
            svg = distribution_svg(row.distribution, salt=self._salt())
            figure = f'<figure class="{css}" data-feature="{_e(row.name)}">{svg}</figure>'
        where = f' id="{anchor}"' if anchor else ""
        return (
            f'<div class="feature"{where}>\n<h4>{_e(row.name)}</h4>\n'
            f'<div class="pair">{figure}\n{_scores(row)}</div>\n</div>\n'
        )

    def _charts(self, variant: str, charts: tuple[Chart, ...], note: str) -> str:
        drawn = [c for c in charts if c.has_data]
        if not drawn:
            return _empty(note)
        parts = ['<div class="charts">\n']
        for chart in charts:
            if not chart.has_data:
                parts.append(
                    f"<div><p><b>{_e(chart.title)}</b></p>{_empty(chart.empty_note)}</div>"
                )
                continue
            self._progress(f"charting {variant}/{chart.title}")
            svg = chart_svg(chart, salt=self._salt())
            parts.append(
                f'<figure class="chart"><figcaption>{_e(chart.title)}</figcaption>{svg}</figure>\n'
            )
        parts.append("</div>\n")
        return "".join(parts)
