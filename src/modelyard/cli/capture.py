"""``modelyard capture …``: the requests the servers captured, listed and exported.

Each command parses its arguments, makes one call into :class:`CaptureService` and renders the
result.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json
from modelyard.domain.durations import parse_time
from modelyard.services.capture import CaptureFile, CaptureService
from modelyard.services.capture_retention import CapturePruned

app = typer.Typer(
    name="capture",
    help=(
        "The requests servers captured (endpoints create|update --capture): list, export and prune."
    ),
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]
OverwriteFlag = Annotated[
    bool, typer.Option("--overwrite", help="Replace the file if it already exists.")
]
_TIME_HELP = "an ISO time (UTC unless it names a zone) or a duration before now (30m, 1h, 2d)"


def _service() -> CaptureService:
    return platform().capture


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _clock(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%H:%M:%S")


def _files_table(name: str, files: Sequence[CaptureFile], width: int) -> Table:
    """One line a file. The numbers keep their width whatever the terminal's (Rich shrinks
    every column of a table too wide, down to nothing: at 80 columns the hour, rows and size
    were gone); the file name, given in full by ``--json``, is cut to what is left. A file's
    rows lie in its partition hour, so first and last are times of that date."""
    cells = []
    for f in files:
        date, hour = (f.hour.strftime("%Y-%m-%d"), f.hour.strftime("%H")) if f.hour else ("?", "?")
        rows = "unreadable" if f.error else f"{f.rows:,}"
        cells.append(
            (
                date,
                hour,
                rows,
                _clock(f.first),
                _clock(f.last),
                _size(f.size),
                f.path.rsplit("/")[-1],
            )
        )
    heads = ("date", "hour", "rows", "first (UTC)", "last (UTC)", "size")
    fixed = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(heads)]
    # Each column takes its width plus a space either side and a border: 3 more, 1 at the end.
    room = width - sum(fixed) - 3 * (len(heads) + 1) - 1
    table = Table(title=f"Captured files of endpoint {name}")
    for head, least in zip(heads, fixed, strict=True):
        if head in ("hour", "rows", "size"):
            table.add_column(head, justify="right", no_wrap=True, min_width=least)
        else:
            table.add_column(head, no_wrap=True, min_width=least)
    table.add_column("file", no_wrap=True, overflow="ellipsis", max_width=max(room, 8))
    for row in cells:
        table.add_row(*row)
    return table


@app.command("list")
def list_files(name: NameArg, json_: JsonFlag = False) -> None:
    """List an endpoint's captured files by date and hour, with row counts and time ranges
    (and how many rows were sent with a caller's InferenceId)."""
    service = _service()
    files = service.list(name)
    if json_:
        print_json([f.to_dict() for f in files])
        return
    if not files:
        console.print(
            f"No captured rows for endpoint {name} in {service.url} (turn capture on with "
            "'modelyard endpoints update NAME … --capture PERCENT').",
            markup=False,
        )
        return
    console.print(_files_table(name, files, console.width))
    rows = sum(f.rows for f in files)
    console.print(f"{rows:,} rows in {len(files)} files under {service.url}", markup=False)
    # Not a column: the table's numbers already fill an 80-column terminal (--json has it).
    callers = sum(f.caller_ids or 0 for f in files)
    if callers:
        console.print(
            f"{callers:,} rows sent with a caller's InferenceId (column caller_inference_id)",
            markup=False,
        )
    for f in files:
        if f.error:
            console.print(f"unreadable: {f.path}: {f.error}", markup=False)


@app.command("export")
def export(
    name: NameArg,
    since: Annotated[
        str, typer.Option("--since", metavar="TIME", help=f"Rows captured from: {_TIME_HELP}.")
    ],
    out: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE|URL",
            help="The file to write, in the format its suffix names: .parquet, .csv (list "
            "columns as JSON text; text starting with = + - @ gets a leading ', so that a "
            "spreadsheet does not run it) or .jsonl; a local path or any fsspec URL "
            "(s3://b/rows.parquet). An existing file is refused without --overwrite.",
        ),
    ],
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="TIME", help=f"Up to (default: now): {_TIME_HELP}."),
    ] = None,
    variant: Annotated[
        str | None, typer.Option("--variant", metavar="VARIANT", help="Only this variant's rows.")
    ] = None,
    overwrite: OverwriteFlag = False,
    skip_damaged: Annotated[
        bool,
        typer.Option(
            "--skip-damaged",
            help="Leave out captured files that are not readable Parquet (named on stderr) "
            "instead of refusing the export.",
        ),
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Write an endpoint's captured rows between two times into one Parquet, CSV or JSON Lines
    file (one row per input row: inference id, time, variant, model version, latency,
    input.* and output.*), whole or not at all."""
    start = parse_time(since)
    end = parse_time(until) if until is not None else None
    done = _service().export(
        name, start, end, out, variant=variant, overwrite=overwrite, skip_damaged=skip_damaged
    )
    if json_:
        print_json(done.to_dict())
        return
    console.print(
        f"Wrote {done.rows:,} rows from {done.files} captured files "
        f"({_when(done.since)} to {_when(done.until)} UTC) to {done.path} ({done.format})",
        markup=False,
    )
    for left_out in done.skipped:
        typer.echo(f"skipped (damaged): {left_out}", err=True)
    if not done.rows:  # on stderr: an empty window is a result, but rarely the one meant
        typer.echo(
            f"note: endpoint {name} captured no rows in that window; 'modelyard endpoints "
            f"show {name}' says whether capture is on ('capture list {name}': what it has)",
            err=True,
        )


@app.command("prune")
def prune(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            metavar="TIME",
            help=f"Delete the rows captured before: {_TIME_HELP}. Whole partition hours go; "
            "the hour it falls in is kept.",
        ),
    ],
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="Endpoint name (or --all).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every endpoint's captured rows.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Delete captured rows older than a time, by whole partition hour (servers keep
    capturing). Set MODELYARD_CAPTURE_RETENTION_D to have the scheduler loop do it hourly."""
    if (name is None) == (not all_):
        raise typer.BadParameter(
            "give an endpoint NAME or --all (not both)", param_hint="NAME / --all"
        )
    current = platform()
    done = current.capture_retention.prune(name, parse_time(before), dry_run=dry_run)
    if json_:
        print_json(done.to_dict())
        return
    console.print(_pruned_line(done, current.capture.url), markup=False)


def _pruned_line(done: CapturePruned, url: str) -> str:
    verb = "Would delete" if done.dry_run else "Deleted"
    whose = ", ".join(done.endpoints) if done.endpoints else "no endpoint"
    return (
        f"{verb} {done.files:,} files ({_size(done.size)}) in {done.hours:,} partition hours "
        f"of {whose}, captured before {_when(done.before)} UTC, under {url}"
    )
