"""``modelyard monitor report NAME -o report.html``: an endpoint's monitoring report, one file.

The page is self-contained (inline CSS and SVG figures, no script, font or link), so it opens
offline and can be mailed or attached to a ticket. The service writes it whole or not at all,
and refuses an existing file unless told to replace it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from modelyard.cli.context import platform
from modelyard.cli.render import console
from modelyard.domain.durations import parse_duration
from modelyard.services.file_output import shown


def report(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE|URL",
            help="Where to write the HTML report: a local path or any fsspec URL (s3://…).",
        ),
    ],
    window: Annotated[
        str,
        typer.Option(metavar="DURATION", help="How far back the report looks: 1h, 24h, 7d …"),
    ] = "24h",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the file if it already exists.")
    ] = False,
) -> None:
    """Write the monitoring report of endpoint NAME as one self-contained HTML file.

    It shows, per variant, drift per feature with the baseline and current distributions,
    data quality, latency, errors, throughput and model quality over the window, and the
    endpoint's alarms and monitor runs. It opens offline: nothing is loaded from elsewhere.
    An existing FILE is refused without --overwrite.
    """
    span = parse_duration(window)
    service = platform().reports
    if console.is_terminal:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"report of {escape(name)}", total=None)
            size = service.write(
                name,
                output,
                window=span,
                overwrite=overwrite,
                progress=lambda what: bar.update(task, description=escape(what)),
            )
    else:
        size = service.write(name, output, window=span, overwrite=overwrite)
    console.print(
        f"Wrote the monitoring report of {name} to {shown(output)} ({size / 1024:,.0f} KiB)."
    )
