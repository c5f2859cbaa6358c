"""The report's figures: small matplotlib figures saved as SVG text to inline in the page.

Why SVG rather than PNG: the page stays one text file that any browser opens offline, the
figures stay sharp when zoomed, and text stays text (``svg.fonttype = none``: the browser's own
sans-serif font draws it, so no font is embedded or fetched).

Each figure is made with :class:`matplotlib.figure.Figure` directly, never through pyplot: no
global figure registry to leak into, no GUI backend chosen, and safe to call from any thread.
matplotlib is imported on first use (importing modelyard stays cheap).

The SVG is cut down to its ``<svg>`` element: the XML declaration and DOCTYPE (which name a
DTD by URL) are dropped, and so are the namespace declarations, which an HTML parser does not
need. Element ids are derived from a per-figure ``salt``, so that the figures of one page never
share an id and the same data gives the same page.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from modelyard.monitoring.report_model import (
    CategoricalDistribution,
    Chart,
    Distribution,
    NumericDistribution,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colours of the baseline and the current window, in every figure and in the page's key.
BASELINE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"
#: Colours of a chart's series, in order.
SERIES_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3")
#: The longest category label drawn under a bar (the page's table holds the full name).
MAX_LABEL = 18

_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.size": 7,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "lines.linewidth": 1.2,
}
#: Metadata matplotlib would otherwise write into each SVG (a date, a creator, an RDF type URL).
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
#: An element id, or a reference to one (``url(#…)``, ``href="#…"``), in a tag's attributes.
_IDS = re.compile(r'(\sid="|url\(#|href="#)([^")]+)')
_TAG = re.compile(r"<[^>]*>")
#: matplotlib's warning for a character its font cannot draw.
_MISSING_GLYPH = r"Glyph \d+ .*missing from font"
#: Values past this magnitude are drawn on a scaled axis (see ``_numeric``).
_HUGE = 1e300


def distribution_svg(distribution: Distribution, *, salt: str) -> str:
    """Baseline and current distributions of one column, overlaid, as an ``<svg>`` element.

    Numeric columns are drawn as two step histograms on the shared bins; categorical ones as
    paired bars per category.

    Args:
        distribution: The shares to draw.
        salt: Unique within the page (element ids are derived from it).
    """
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    numeric = isinstance(distribution, NumericDistribution)
    with matplotlib.rc_context(_style(salt)):
        # Category labels are slanted under their bars: they need room below the axes.
        figure, axes = _figure(3.4, 1.9, bottom=0.4) if numeric else _figure(3.4, 2.3, bottom=0.8)
        if isinstance(distribution, NumericDistribution):
            _numeric(axes, distribution)
        else:
            _categorical(axes, distribution)
        axes.set_ylabel("share of rows")
        # Few ticks: each one is a text to lay out, the bulk of a small figure's drawing time.
        axes.yaxis.set_major_locator(MaxNLocator(4))
        if numeric:
            axes.xaxis.set_major_locator(MaxNLocator(5))
        return _svg(figure, salt)


def chart_svg(chart: Chart, *, salt: str) -> str:
    """A chart over time (lines with gaps where values are missing) as an ``<svg>`` element.

    Args:
        chart: The series to draw; at least one of them should have data.
        salt: Unique within the page (element ids are derived from it).
    """
    import matplotlib
    import matplotlib.dates as mdates
    from matplotlib.ticker import MaxNLocator

    drawn = [v for series in chart.series for v in series.values]
    scale, units = _scale([*drawn, chart.reference])
    with matplotlib.rc_context(_style(salt)):
        figure, axes = _figure(4.6, 1.9)
        for index, series in enumerate(chart.series):
            values = [math.nan if v is None else v / scale for v in series.values]
            present = sum(1 for v in series.values if v is not None)
            axes.plot(
                mdates.date2num(list(series.times)),
                values,
                color=SERIES_COLORS[index % len(SERIES_COLORS)],
                label=_plain(series.label),
                # Isolated points between gaps would be invisible as a line alone.
                marker="." if present < 60 else None,
                markersize=3,
            )
        if chart.reference is not None:
            axes.axhline(
                chart.reference / scale,
                color="#555555",
                linestyle="--",
                linewidth=0.8,
                label=_plain(chart.reference_label or "reference"),
            )
        # The whole window, not just where values are: one value alone would otherwise make
        # an axis a moment wide (and the date locator gives up on it).
        times = [t for series in chart.series for t in series.times]
        if times:
            first, last = min(times), max(times)
            if first == last:
                first, last = first - timedelta(minutes=1), last + timedelta(minutes=1)
            axes.set_xlim(mdates.date2num(first), mdates.date2num(last))
        locator = mdates.AutoDateLocator(maxticks=6)
        # Windows of 3-5 minutes, hours or days are too short for ticks a unit apart and too
        # long for its default steps below: the locator warned (on the report's stderr) and
        # fell back to crowded ticks. A step of a whole unit below covers them.
        for unit, whole in ((mdates.SECONDLY, 60), (mdates.MINUTELY, 60), (mdates.HOURLY, 24)):
            locator.intervald[unit] = [*locator.intervald[unit], whole]
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axes.set_ylabel(_plain(f"{chart.unit} ({units})" if units else chart.unit))
        axes.yaxis.set_major_locator(MaxNLocator(4))
        if len(chart.series) > 1 or chart.reference is not None:
            axes.legend(fontsize=6, frameon=False, loc="best")
        return _svg(figure, salt)


def _style(salt: str) -> Any:
    # Typed Any: matplotlib types rc_context's keys as a literal union of every setting.
    return {**_STYLE, "svg.hashsalt": salt}


def _figure(width: float, height: float, bottom: float = 0.4) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    # Fixed margins (in inches, room for six-character tick labels at 7 pt) rather than a
    # layout engine, which lays each figure out again and doubles its drawing time.
    figure.subplots_adjust(
        left=0.6 / width, right=1 - 0.2 / width, bottom=bottom / height, top=1 - 0.1 / height
    )
    return figure, figure.add_subplot()


def _numeric(axes: Axes, distribution: NumericDistribution) -> None:
    scale, units = _scale(distribution.edges)
    edges = [e / scale for e in distribution.edges]
    if units:
        axes.set_xlabel(units)
    axes.stairs(
        list(distribution.baseline),
        edges,
        fill=True,
        color=BASELINE_COLOR,
        alpha=0.35,
        linewidth=0,
    )
    axes.stairs(list(distribution.baseline), edges, color=BASELINE_COLOR, linewidth=0.8)
    axes.stairs(list(distribution.current), edges, color=CURRENT_COLOR, linewidth=1.4)
    axes.set_xlim(edges[0], edges[-1])
    axes.set_ylim(bottom=0)


def _scale(values: Sequence[float | None]) -> tuple[float, str]:
    """What to divide ``values`` by before drawing them, and the words that say so.

    matplotlib's ticks overflow near the end of the float range (a ValueError on drawing):
    an axis with values past :data:`_HUGE` (a caller's 1.8e308) is drawn in units of a power
    of ten. Others are drawn as they are (1.0, "").
    """
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    largest = max(finite, default=0.0)
    if largest <= _HUGE:
        return 1.0, ""
    exponent = math.floor(math.log10(largest))
    return 10.0**exponent, f"in units of 1e{exponent}"


def _categorical(axes: Axes, distribution: CategoricalDistribution) -> None:
    positions = list(range(len(distribution.categories)))
    width = 0.4
    axes.bar(
        [p - width / 2 for p in positions],
        list(distribution.baseline),
        width,
        color=BASELINE_COLOR,
        alpha=0.6,
    )
    axes.bar(
        [p + width / 2 for p in positions], list(distribution.current), width, color=CURRENT_COLOR
    )
    axes.set_xticks(positions, _labels(distribution.categories), rotation=30, ha="right")


def _labels(categories: Sequence[str]) -> list[str]:
    return [_plain(_cut(c)) for c in categories]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _plain(text: str) -> str:
    # A "$" would start matplotlib's math mode (and an unbalanced one raises); user text is
    # drawn as written. matplotlib escapes <, > and & in the SVG's text itself.
    return text.replace("$", r"\$")


def _svg(figure: Figure, salt: str) -> str:
    buffer = io.StringIO()
    with warnings.catch_warnings():
        # Text is drawn by the browser's fonts (svg.fonttype none): a glyph matplotlib's own
        # font lacks (a CJK or emoji category) only shifts its layout estimate, and the warning
        # for each one would fill the terminal of whoever makes the report.
        warnings.filterwarnings("ignore", _MISSING_GLYPH, UserWarning)
        figure.savefig(buffer, format="svg", metadata=_NO_METADATA)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    head, _, body = text.partition(">")
    # matplotlib names groups "figure_1", "axes_1" … in every figure: one page of many figures
    # would repeat them, so every id (and every reference to one) gets the figure's salt.
    # Only inside tags: a label drawn as text may read ' id="x' and must stay as written.
    body = _TAG.sub(lambda tag: _IDS.sub(rf"\g<1>{salt}-\g<2>", tag.group(0)), body)
    return _NAMESPACES.sub("", head) + ' role="img">' + body
