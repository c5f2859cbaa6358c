"""``modelyard alarms …``: alarm rules on endpoints' metrics and drift scores, their state and
history. Rules are evaluated by the scheduler loop (`modelyard serve` or `modelyard monitor run`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json
from modelyard.domain.alarms import STATE_CHANGE, AlarmEvent, AlarmStatus, MissingData, SinkSpec
from modelyard.domain.counts import MAX_LIMIT
from modelyard.domain.durations import parse_duration
from modelyard.domain.monitors import format_duration

app = typer.Typer(
    name="alarms",
    help="Alarms on endpoints' metrics and drift scores: OK, ALARM or INSUFFICIENT_DATA.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Alarm name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]


def _short(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@app.command("create")
def create(
    name: NameArg,
    endpoint: Annotated[str, typer.Option(help="The endpoint watched.")],
    metric: Annotated[
        str,
        typer.Option(help="A metric (latency_p99_ms, error_rate …) or drift score (drift.share)."),
    ],
    above: Annotated[float | None, typer.Option(help="ALARM when the value is above this.")] = None,
    below: Annotated[float | None, typer.Option(help="ALARM when the value is below this.")] = None,
    inclusive: Annotated[
        bool, typer.Option("--inclusive", help="Equal to the threshold breaches too.")
    ] = False,
    datapoints: Annotated[
        int, typer.Option(min=1, metavar="N", help="Windows that must breach (N of M).")
    ] = 1,
    of: Annotated[int, typer.Option(min=1, metavar="M", help="Windows looked at.")] = 1,
    window: Annotated[str, typer.Option(metavar="DURATION", help="Length of a window.")] = "5m",
    variant: Annotated[
        str | None, typer.Option(help="Watch one variant (default: the whole endpoint).")
    ] = None,
    statistic: Annotated[
        str | None,
        typer.Option(help="mean|sum|min|max of a window's points (default: the metric's own)."),
    ] = None,
    webhook: Annotated[
        list[str] | None,
        typer.Option(
            metavar="URL",
            help="POST each state change as JSON here (repeatable). The URL is a secret: it is "
            "stored in the metadata database and shown masked.",
        ),
    ] = None,
    missing: Annotated[
        MissingData,
        typer.Option(
            help="How a window without data counts: insufficient (INSUFFICIENT_DATA), breaching, "
            "not-breaching, or zero (counts only: no traffic is 0 requests)."
        ),
    ] = MissingData.INSUFFICIENT,
    json_: JsonFlag = False,
) -> None:
    """Create alarm NAME: ALARM when N of the last M windows breach the threshold.

    By default no data is INSUFFICIENT_DATA, never OK; --missing says otherwise (--missing zero
    with --metric requests --below 1 fires when traffic stops). State changes are logged and
    sent to the webhooks.
    """
    if (above is None) == (below is None):
        raise typer.BadParameter("give exactly one of --above and --below", param_hint="'--above'")
    if datapoints > of:
        raise typer.BadParameter(
            f"N ({datapoints}) cannot exceed M ({of})", param_hint="'--datapoints'"
        )
    comparison = (">" if above is not None else "<") + ("=" if inclusive else "")
    threshold = above if above is not None else below
    assert threshold is not None
    created = platform().alarms.create(
        name,
        endpoint=endpoint,
        metric=metric,
        comparison=comparison,
        threshold=threshold,
        datapoints=datapoints,
        windows=of,
        window=parse_duration(window),
        variant=variant,
        statistic=statistic,
        sinks=[SinkSpec("webhook", url) for url in webhook or ()],
        missing=missing,
    )
    if json_:
        print_json(created)
        return
    console.print(f"alarm {created.rule.name} created: {created.rule.condition}", markup=False)
    if created.note is not None:
        typer.echo(f"warning: {created.note}", err=True)


@app.command("list")
def list_alarms(
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint's alarms.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Every alarm with its state."""
    found = platform().alarms.list_alarms(endpoint)
    if json_:
        print_json(found)
        return
    table = Table("name", "endpoint", "state", "since (UTC)", "condition", title="Alarms")
    for status in found:
        rule = status.rule
        where = f"{rule.endpoint}/{rule.variant}" if rule.variant else rule.endpoint
        table.add_row(rule.name, where, status.state.value, _short(status.since), rule.condition)
    console.print(table)


@app.command("show")
def show(name: NameArg, json_: JsonFlag = False) -> None:
    """An alarm's rule, state and why."""
    status = platform().alarms.state(name)
    if json_:
        print_json(status)
        return
    console.print(_detail(status), markup=False)


def _detail(status: AlarmStatus) -> str:
    rule = status.rule
    values = {
        "endpoint": rule.endpoint,
        "variant": rule.variant or "all",
        "state": status.state.value,
        "since": status.since.isoformat(),
        "reason": status.reason,
        **({"note": status.note} if status.note is not None else {}),
        "condition": rule.condition,
        "window": format_duration(rule.window),
        "sinks": ", ".join(s.label for s in rule.sinks),
        "evaluated": status.evaluated_at.isoformat() if status.evaluated_at else "never",
        "created": rule.created_at.isoformat(),
    }
    width = max(len(k) for k in values)
    return "\n".join([f"Alarm {rule.name}"] + [f"  {k:<{width}}  {v}" for k, v in values.items()])


@app.command("history")
def history(
    name: NameArg,
    limit: Annotated[int, typer.Option(help=f"How many, newest first (1 to {MAX_LIMIT:,}).")] = 50,
    json_: JsonFlag = False,
) -> None:
    """An alarm's state changes, newest first, with how each sink took them; and the
    rollbacks of deployments that watched it, which its sinks were told of."""
    events = platform().alarms.history(name, limit)
    if json_:
        print_json(events)
        return
    table = Table("at (UTC)", "change", "reason", "sinks", title=f"History of alarm {name}")
    for event in events:
        table.add_row(
            event.at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{event.old.value} -> {event.new.value}"
            if event.kind == STATE_CHANGE
            else event.kind.replace("_", " "),
            event.reason,
            _sent(event),
        )
    console.print(table)


def _sent(event: AlarmEvent) -> str:
    return ", ".join(
        (f"{n.sink}: ok" if n.ok else f"{n.sink}: FAILED ({n.error})")
        + (f" after {n.attempts} attempts" if n.attempts > 1 else "")
        for n in event.notifications
    )


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete an alarm and its history."""
    platform().alarms.delete(name)
    console.print(f"alarm {name} deleted")
