"""``modelyard monitor metrics NAME``: an endpoint's per-minute metric series, charted.

Each series is drawn as a column chart in the terminal (one column per minute, or per several
minutes when the window is wider than the terminal: their mean, or their extreme for a min or
max series), with the y axis from 0 (or the lowest value) to the highest, the window's ends
under it, and a summary line.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape

from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json
from modelyard.domain.durations import parse_time
from modelyard.domain.metrics import METRICS, MetricInfo, MetricPoint, split_name

DEFAULT_METRICS = ("requests", "error_rate", "latency_p50_ms", "latency_p99_ms")
_BLOCKS = " ▁▂▃▄▅▆▇█"
_HEIGHT = 6


def metrics(
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="Endpoint name.", show_default=False)
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="One variant (default: all variants together).")
    ] = None,
    since: Annotated[
        str, typer.Option(metavar="WHEN", help="Start: a duration before now (1h, 2d) or a time.")
    ] = "1h",
    until: Annotated[
        str | None, typer.Option(metavar="WHEN", help="End (default: now), as --since.")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            metavar="SERIES",
            help="A series to show (repeat). Default: requests, error_rate, latency_p50_ms, "
            "latency_p99_ms. Those about one feature or class take it after a dot: "
            "input_mean.age. --list shows them all.",
        ),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the series names and exit.")] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")
    ] = False,
) -> None:
    """Show endpoint NAME's per-minute metrics (requests, errors, latency, inputs, outputs).

    Servers write each minute's numbers every few seconds; minutes older than the store's
    retention are kept per hour.
    """
    if list_:
        _list(json_)
        return
    if name is None:
        raise typer.BadParameter("give the endpoint NAME (or --list)", param_hint="NAME")
    now = datetime.now(UTC)
    start = parse_time(since, now)
    end = parse_time(until, now) if until is not None else now
    names = list(dict.fromkeys(metric or DEFAULT_METRICS))
    table = platform().metrics.table(name, names, variant=variant, since=start, until=end)
    if json_:
        print_json(
            {
                "endpoint": name,
                "variant": variant,
                "since": start,
                "until": end,
                "series": {
                    series: {**_info(series).to_dict(), "points": points}
                    for series, points in table.items()
                },
            }
        )
        return
    width = max(20, min(shutil.get_terminal_size((100, 24)).columns, 160) - 12)
    scope = f"variant {variant}" if variant else "all variants"
    console.print(
        f"[bold]{escape(name)}[/bold] ({escape(scope)}), "
        f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC",
        markup=True,
    )
    for series, points in table.items():
        console.print()
        for line in chart(series, points, _info(series), width):
            console.print(line)


def _info(series: str) -> MetricInfo:
    return METRICS[split_name(series)[0]]


def _list(json_: bool) -> None:
    names = platform().metrics.names()
    if json_:
        print_json({name: METRICS[name].to_dict() for name in names})
        return
    for name in names:
        info = METRICS[name]
        shown = f"{name}.<{info.qualifier}>" if info.qualifier_required else name
        console.print(f"{shown:32} {info.description} ({info.unit})")


def fold(values: Sequence[float | None], columns: int, how: str) -> list[float | None]:
    """``values`` in at most ``columns`` groups, each folded by ``how`` (sum, mean, min, max);
    a group without a value is None."""
    if len(values) <= columns:
        return list(values)
    out: list[float | None] = []
    for i in range(columns):
        group = [
            v
            for v in values[i * len(values) // columns : (i + 1) * len(values) // columns]
            if v is not None
        ]
        if not group:
            out.append(None)
        elif how == "sum":
            out.append(sum(group))
        elif how == "min":
            out.append(min(group))
        elif how == "max":
            out.append(max(group))
        else:
            out.append(sum(v / len(group) for v in group))
    return out


def _number(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 1e6:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def summary(values: Sequence[float | None], info: MetricInfo) -> str:
    """``total 1,234`` or ``mean 0.42  min 0.1  max 0.9``, over the minutes with data."""
    present = [v for v in values if v is not None]
    if not present:
        return "no data"
    if info.aggregation == "sum":
        return f"total {_number(sum(present))}  peak {_number(max(present))}/min"
    mean = sum(v / len(present) for v in present)  # a sum of large values would overflow
    return f"mean {_number(mean)}  min {_number(min(present))}  max {_number(max(present))}"


def chart(name: str, points: Sequence[MetricPoint], info: MetricInfo, width: int) -> list[str]:
    """The lines of a column chart of one series."""
    values = [p.value for p in points]
    title = f"{name} ({info.unit}) — {summary(values, info)}"
    # Several minutes per column: counts are shown per minute (their mean), so that the axis
    # reads the same whatever the window; extremes keep their extreme.
    folded = fold(values, width, info.aggregation if info.aggregation in ("min", "max") else "mean")
    present = [v for v in folded if v is not None and math.isfinite(v)]
    if not present:
        return [title]
    low, high = min(0.0, min(present)), max(present)
    # Halved: values near both ends of the float range have a span beyond it (inf, then NaN).
    span = (high / 2 - low / 2) or 1.0
    levels = [
        None if v is None or not math.isfinite(v) else round((v / 2 - low / 2) / span * _HEIGHT * 8)
        for v in folded
    ]
    axis = [_number(high), *[""] * (_HEIGHT - 2), _number(low)]
    pad = max(len(a) for a in axis)
    lines = [title]
    for row in range(_HEIGHT):
        floor = (_HEIGHT - 1 - row) * 8
        cells = "".join(
            "·"
            if level is None and row == _HEIGHT - 1
            else " "
            if level is None
            else _BLOCKS[max(0, min(8, level - floor))]
            for level in levels
        )
        lines.append(f"{axis[row]:>{pad}} │{cells}")
    first, last = points[0].minute, points[-1].minute
    left, right = f"{first:%H:%M}", f"{last:%H:%M}"
    # Fewer columns than the two times need: they are kept apart, never run together.
    ends = (
        left if first == last else left + right.rjust(max(len(right) + 1, len(folded) - len(left)))
    )
    lines.append(f"{'':>{pad}} └{ends}")
    return lines
