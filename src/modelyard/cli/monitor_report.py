"""``modelyard monitor report NAME -o report.html``: an endpoint's monitoring report, one file.

The page is self-contained (inline CSS and SVG figures, no script, font or link), so it opens
offline and can be mailed or attached to a ticket. It is written whole or not at all: into a
temporary file beside the target, then renamed over it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelyard.cli.context import platform
from modelyard.cli.render import console
from modelyard.domain.durations import parse_duration
from modelyard.errors import StorageNotWritable


def report(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Where to write the HTML report.", dir_okay=False
        ),
    ],
    window: Annotated[
        str,
        typer.Option(metavar="DURATION", help="How far back the report looks: 1h, 24h, 7d …"),
    ] = "24h",
) -> None:
    """Write the monitoring report of endpoint NAME as one self-contained HTML file.

    It shows, per variant, drift per feature with the baseline and current distributions,
    data quality, latency, errors, throughput and model quality over the window, and the
    endpoint's alarms and monitor runs. It opens offline: nothing is loaded from elsewhere.
    """
    span = parse_duration(window)
    service = platform().reports
    if console.is_terminal:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"report of {escape(name)}", total=None)
            page = service.report(
                name,
                window=span,
                progress=lambda what: bar.update(task, description=escape(what)),
            )
    else:
        page = service.report(name, window=span)
    _write(output, page)
    size = len(page.encode()) / 1024
    console.print(
        f"Wrote the monitoring report of {escape(name)} to {escape(str(output))} ({size:,.0f} KiB)."
    )


def _write(target: Path, page: str) -> None:
    """Write ``page`` to ``target`` atomically (a reader never sees half a report).

    Raises:
        StorageNotWritable: the folder is missing or not writable, the disk is full …
    """
    folder = target.parent
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as exc:
        raise StorageNotWritable(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(page)
        mask = os.umask(0)  # mkstemp makes the file private; a report is like any other file
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, target)
    except OSError as exc:
        raise StorageNotWritable(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
