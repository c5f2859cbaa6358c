"""``modelyard schedules create|list|show|pause|resume|delete``: batch transforms on a cron
schedule, and the history of their runs.

The schedules run in `modelyard serve` or `modelyard scheduler` (each tick once, however many
of them share the store). Everything after ``--`` in ``create`` is a ``modelyard batch`` command
line, read by the same options (:func:`modelyard.cli.batch.request_from_args`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json
from modelyard.domain.batch import TransformRequest
from modelyard.domain.counts import MAX_LIMIT
from modelyard.domain.schedules import MissedPolicy, Schedule, ScheduleRun
from modelyard.errors import InvalidInput
from modelyard.redaction import mask_url

app = typer.Typer(
    name="schedules",
    help="Batch transforms on a cron schedule, in a time zone, with their run history.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Schedule name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]
_USAGE = "-- batch MODEL_REF --input PATH --output PATH [batch options]"


def _local(schedule: Schedule, when: datetime | None, *, zone: bool = True) -> str:
    if when is None:
        return "-"
    shown = when.astimezone(ZoneInfo(schedule.timezone))
    return shown.strftime("%Y-%m-%d %H:%M %Z" if zone else "%Y-%m-%d %H:%M")


def _request_from(command: list[str]) -> TransformRequest:
    if not command or command[0] != "batch":
        shown = " ".join(command[:1]) or "nothing"
        raise InvalidInput(f"a schedule runs a batch command: expected {_USAGE!r}, got {shown!r}")
    from modelyard.cli.batch import request_from_args

    return request_from_args(command[1:])


@app.command("create", no_args_is_help=True)
def create(
    name: NameArg,
    command: Annotated[
        list[str],
        typer.Argument(
            metavar="-- batch MODEL_REF …",
            help="After '--': a `modelyard batch` command line (its options, not --wait/--json).",
            show_default=False,
        ),
    ],
    cron: Annotated[
        str,
        typer.Option(metavar="EXPR", help="Five-field cron expression, e.g. '0 6 * * 1'."),
    ],
    timezone: Annotated[
        str,
        typer.Option(metavar="ZONE", help="IANA time zone the expression is read in."),
    ] = "UTC",
    missed: Annotated[
        MissedPolicy,
        typer.Option(
            help="Ticks missed while no scheduler ran: run-once (one catch-up run at start-up) "
            "or skip (recorded as skipped)."
        ),
    ] = MissedPolicy.RUN_ONCE,
    json_: JsonFlag = False,
) -> None:
    """Create schedule NAME: run the batch transform after '--' at every tick of --cron.

    The output may hold {tick} or {tick:%Y-%m-%d} (the tick in --timezone) so that each run
    writes its own folder; an output without it needs --overwrite. The request is checked now
    (model, input, output), as `modelyard batch` would; the model reference is resolved at
    each run. Across daylight saving changes each wall-clock time ticks once, and a time the
    clocks skip ticks when they resume.
    """
    request = _request_from(command)
    found = platform().schedules.create(
        name, cron=cron, request=request, timezone=timezone, missed=missed
    )
    if json_:
        print_json(_detail(found))
        return
    console.print(
        f"created schedule {found.name}: batch {found.request.model} at '{found.cron}' in "
        f"{found.timezone}; next run {_local(found, platform().schedules.next_run(found))}",
        markup=False,
    )


def _detail(schedule: Schedule) -> dict[str, Any]:
    data = schedule.to_dict()
    data["next_run"] = platform().schedules.next_run(schedule)
    return data


@app.command("list")
def list_(json_: JsonFlag = False) -> None:
    """Every schedule: when it runs next and how its last run went (`show` tells more)."""
    service = platform().schedules
    found = service.schedules()
    if json_:
        print_json([_detail(s) for s in found])
        return
    table = Table(title="Schedules")
    for column in ("name", "cron", "time zone", "next run (local)", "last run"):
        table.add_column(column, no_wrap=True)
    for s in found:
        last = service.runs(s.name, 1)
        next_run = "paused" if s.paused else _local(s, service.next_run(s), zone=False)
        table.add_row(s.name, s.cron, s.timezone, next_run, last[0].status.value if last else "-")
    console.print(table)


@app.command("show")
def show(
    name: NameArg,
    limit: Annotated[
        int, typer.Option(help=f"Runs shown, newest first (1 to {MAX_LIMIT:,}).")
    ] = 20,
    json_: JsonFlag = False,
) -> None:
    """Schedule NAME and its runs, newest first: the job each started, or why none did."""
    service = platform().schedules
    schedule = service.get(name)
    runs = service.runs(name, limit)
    jobs = [service.job(r) for r in runs]
    if json_:
        shown = [
            r.to_dict() | {"job_status": j.status.value if j else None}
            for r, j in zip(runs, jobs, strict=True)
        ]
        print_json({"schedule": _detail(schedule), "runs": shown})
        return
    request = schedule.request
    state = (
        "paused" if schedule.paused else f"next run {_local(schedule, service.next_run(schedule))}"
    )
    lines = [
        f"schedule {schedule.name}: '{schedule.cron}' in {schedule.timezone}, {state}",
        f"  missed ticks: {schedule.missed.value}",
        f"  batch {request.model} --input {mask_url(request.input)} "
        f"--output {mask_url(request.output)}",
    ]
    options = _options(request)
    if options:
        lines.append(f"  options: {options}")
    console.print("\n".join(lines), markup=False)
    table = Table("tick", "status", "job", "job status", "note", title=f"Runs of {name}")
    for run, job in zip(runs, jobs, strict=True):
        table.add_row(
            _local(schedule, run.tick),
            run.status.value,
            run.job or "-",
            job.status.value if job is not None else "-",
            _note(run),
        )
    console.print(table)


def _options(request: TransformRequest) -> str:
    defaults = TransformRequest(request.model, request.input, request.output).to_dict()
    return ", ".join(f"{k}={v}" for k, v in request.to_dict().items() if v != defaults[k])


def _note(run: ScheduleRun) -> str:
    parts = []
    if run.error:
        parts.append(run.error)
    if run.late:
        parts.append("late: no scheduler ran at its tick")
    if run.missed:
        parts.append(run.missed_text)
    return "; ".join(parts) or "-"


@app.command("pause")
def pause(name: NameArg) -> None:
    """Stop running NAME until it is resumed (its ticks meanwhile never run)."""
    _, changed = platform().schedules.pause(name)
    console.print(f"paused schedule {name}" if changed else f"schedule {name} was paused already")


@app.command("resume")
def resume(name: NameArg) -> None:
    """Run NAME again from its next tick (ticks while it was paused are not caught up)."""
    service = platform().schedules
    found, changed = service.resume(name)
    when = _local(found, service.next_run(found))
    verb = "resumed schedule" if changed else "schedule was not paused:"
    console.print(f"{verb} {name}; next run {when}", markup=False)


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete schedule NAME and its run history (the jobs it started stay)."""
    platform().schedules.delete(name)
    console.print(f"deleted schedule {name}", markup=False)
