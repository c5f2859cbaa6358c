"""``modelyard monitor quality NAME``: how good an endpoint's labelled predictions were, per
window and variant, against each model version's validation metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json
from modelyard.domain.durations import parse_duration, parse_time
from modelyard.domain.quality import METRICS, QualityConfig, QualityPoint, QualityStatus, Task

_DEFAULT_WINDOWS = 24
_STYLE = {
    QualityStatus.OK: "green",
    QualityStatus.DEGRADED: "bold red",
    QualityStatus.INSUFFICIENT_DATA: "yellow",
    QualityStatus.NO_BASELINE: "dim",
}


def quality(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")],
    variant: Annotated[
        str | None, typer.Option("--variant", metavar="VARIANT", help="Only this variant.")
    ] = None,
    window: Annotated[
        str, typer.Option(metavar="DURATION", help="Length of each window: 10m, 1h, 1d …")
    ] = "1h",
    since: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="First window's start: a duration before now (24h) or an ISO time "
            f"(default: the last {_DEFAULT_WINDOWS} windows, aligned to the window length).",
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="TIME", help="Last window's end (default: now).")
    ] = None,
    max_drop: Annotated[
        float,
        typer.Option(
            metavar="SHARE",
            help="Degraded when a metric is worse than validation by more than this share of it.",
        ),
    ] = QualityConfig().max_relative_drop,
    min_rows: Annotated[
        int, typer.Option(metavar="ROWS", help="Fewer labelled rows give insufficient_data.")
    ] = QualityConfig().min_rows,
    json_: Annotated[
        bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")
    ] = False,
) -> None:
    """Score endpoint NAME's labelled predictions per window and variant: accuracy,
    precision, recall, F1 and ROC AUC for classifiers, RMSE and MAE for regressors, each
    against the model version's validation value.

    Labels come from `modelyard endpoints feedback` or POST /endpoints/NAME/feedback. A
    prediction counts in the window it was made in; windows of --window tile the time from
    --since to --until. A window with too few labels is insufficient_data, never ok.
    """
    length = parse_duration(window)
    now = datetime.now(UTC)
    end = parse_time(until, now) if until else now
    start = parse_time(since, now) if since else _default_since(end, length)
    config = QualityConfig(max_relative_drop=max_drop, min_rows=min_rows)
    points = platform().feedback.quality(
        name, window=length, since=start, until=end, variant=variant, config=config
    )
    if json_:
        print_json([p.to_dict() for p in points])
        return
    if not points:
        console.print(f"{name}: no variant to score")
        return
    for task in (Task.CLASSIFICATION, Task.REGRESSION):
        chosen = [p for p in points if p.task is task]
        if chosen:
            console.print(_table(name, task, chosen, length))
    unknown = [p for p in points if p.task is None]
    for point in unknown:
        console.print(
            f"{_when(point.start)} {point.variant} ({point.model}): no labels, "
            "and the model's kind is unknown"
        )


def _default_since(end: datetime, length: timedelta) -> datetime | None:
    """The start of the last ``_DEFAULT_WINDOWS`` aligned windows before ``end``; None (the
    service's own default) when that is before the first time a datetime holds."""
    try:
        return _aligned(end, length) - (_DEFAULT_WINDOWS - 1) * length
    except OverflowError:
        return None


def _aligned(when: datetime, length: timedelta) -> datetime:
    """The start of the window of ``length`` holding ``when``, windows aligned to the epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((when - epoch) // length) * length


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _table(name: str, task: Task, points: list[QualityPoint], length: timedelta) -> Table:
    """One line a window, variant and model. Every cell keeps its width whatever the
    terminal's: Rich shrinks every column of a table too wide, and at 80 columns the verdict
    (``insu…``), the window, the model and the validation values were cut away."""
    metrics = METRICS[task]
    heads = ("start (UTC)", "variant", "model", "rows", *metrics, "status")
    rows: list[list[str | Text]] = []
    for point in points:
        baseline = {c.name: c for c in point.comparisons}
        cells: list[str | Text] = []
        for metric in metrics:
            value = point.metrics.get(metric)
            text = "-" if value is None else _value(value)
            compared = baseline.get(metric)
            if compared is not None:
                text += f" ({_value(compared.baseline)})"
            degraded = compared is not None and compared.degraded
            cells.append(Text(text, style="bold red") if degraded else text)
        status = Text(point.status.value, style=_STYLE[point.status])
        rows.append(
            [_when(point.start), point.variant, point.model, str(point.rows), *cells, status]
        )
    widths = [max([len(h), *(len(str(row[i])) for row in rows)]) for i, h in enumerate(heads)]
    table = Table(
        title=f"{name}: {task.value} quality per {_short(length)}",
        title_justify="left",
        # Each column takes its width plus a space either side and a border: 3 more, 1 at the
        # end. Given whole, the table keeps it on a narrower terminal, which wraps its lines.
        width=sum(widths) + 3 * len(widths) + 1,
    )
    for head, widest in zip(heads, widths, strict=True):
        right = head in metrics or head == "rows"
        table.add_column(head, justify="right" if right else "left", no_wrap=True, min_width=widest)
    for row in rows:
        table.add_row(*row)
    table.caption = "value (validation value); degraded values in red"
    return table


def _value(value: float) -> str:
    """Three decimals; a large value (an RMSE after a label of 1e200) in powers of ten, not
    in its hundreds of digits."""
    return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.4g}"


def _short(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
