"""``modelyard monitor schedule|schedules|unschedule|run|runs``: scheduled drift checks; and
``modelyard scheduler``, the scheduler loop.

``modelyard scheduler`` (``monitor run`` is the same loop under its older name) runs the batch
schedules, the monitor schedules and the alarm evaluation; ``modelyard serve`` starts one beside
its server workers (:func:`start_loop_process`). Any number of loops may share a store: each
tick runs once.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from modelyard.cli import drift_options as thresholds
from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json
from modelyard.domain.counts import MAX_LIMIT
from modelyard.domain.drift import DriftReport
from modelyard.domain.durations import parse_duration
from modelyard.domain.monitors import MonitorRun, MonitorSchedule, format_duration
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from modelyard.services.scheduler import Pass

app = typer.Typer(name="monitor", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]


def _when(run: MonitorRun) -> str:
    return run.tick.strftime("%Y-%m-%d %H:%M:%S")


@app.command("schedule")
def schedule(
    name: NameArg,
    every: Annotated[
        str | None, typer.Option(metavar="DURATION", help="Tick every 10m, 1h … (UTC-aligned).")
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(metavar="EXPR", help="Tick on a five-field cron expression, in UTC."),
    ] = None,
    window: Annotated[
        str, typer.Option(metavar="DURATION", help="Captured traffic each run checks.")
    ] = "1h",
    threshold: thresholds.Threshold = None,
    min_rows: thresholds.MinRows = None,
    alpha: thresholds.Alpha = None,
    drift_share: thresholds.DriftShare = None,
    numeric_test: thresholds.NumericTest = None,
    categorical_test: thresholds.CategoricalTest = None,
    text_test: thresholds.TextTest = None,
    completeness_drop: thresholds.CompletenessDrop = None,
    json_: JsonFlag = False,
) -> None:
    """Check endpoint NAME for drift on a schedule (replacing its schedule, if it has one).

    The checks run in `modelyard serve` or `modelyard monitor run`, each tick once however many
    of them share the store. A tick missed while none was running is not caught up: only the
    latest due tick runs. Each check uses the thresholds given here (as `monitor drift`
    takes them); those not given keep their defaults.
    """
    if (every is None) == (cron is None):
        raise typer.BadParameter("give exactly one of --every and --cron", param_hint="'--every'")
    config = thresholds.drift_config(locals())
    found, created = platform().monitors.schedule(
        name,
        every=parse_duration(every) if every is not None else None,
        cron=cron,
        window=parse_duration(window),
        drift_config=config,
    )
    if json_:
        print_json(found)
        return
    verb = "scheduled" if created else "rescheduled"
    console.print(
        f"{verb} drift checks of {found.endpoint}: {found.cadence}, "
        f"over the last {format_duration(found.window)} of captured traffic, "
        + ("default thresholds" if found.drift_config is None else _thresholds(found))
    )


def _thresholds(found: MonitorSchedule) -> str:
    """The thresholds that differ from the defaults, as the options that set them."""
    changes = found.drift_config.changes() if found.drift_config is not None else {}
    words = [f"--{k.replace('_', '-')} {v}" for k, v in changes.items() if k != "thresholds"]
    words += [f"--threshold {k}={v:g}" for k, v in changes.get("thresholds", {}).items()]
    return "thresholds " + " ".join(words) if words else "default thresholds"


@app.command("schedules")
def schedules(json_: JsonFlag = False) -> None:
    """Every monitor schedule."""
    found = platform().monitors.schedules()
    if json_:
        print_json(found)
        return
    table = Table("name", "endpoint", "cadence", "window", "since (UTC)", title="Monitor schedules")
    for s in found:
        table.add_row(
            s.name,
            s.endpoint,
            s.cadence,
            format_duration(s.window),
            s.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@app.command("unschedule")
def unschedule(name: NameArg) -> None:
    """Stop the scheduled drift checks of NAME (its runs stay listed)."""
    left = platform().monitors.unschedule(name)
    console.print(f"unscheduled drift checks of {name}")
    if left:
        typer.echo(
            f"warning: alarms on its drift scores get no data until they are scheduled again: "
            f"{', '.join(left)}",
            err=True,
        )


@app.command("runs")
def runs(
    name: NameArg,
    limit: Annotated[int, typer.Option(help=f"How many, newest first (1 to {MAX_LIMIT:,}).")] = 20,
    json_: JsonFlag = False,
) -> None:
    """The scheduled drift checks of NAME, newest first: status, and each variant's verdict
    (why there was none: no baseline, no rows) and share of drifted features."""
    found = platform().monitors.runs(name, limit)
    if json_:
        print_json(found)
        return
    table = Table("tick (UTC)", "status", "took", "by", "verdict", title=f"Monitor runs of {name}")
    for run in found:
        took = f"{run.duration_s:.2f}s" if run.duration_s is not None else "-"
        table.add_row(_when(run), run.status.value, took, run.holder, _scores(run))
    console.print(table)


def _scores(run: MonitorRun) -> str:
    """Each variant's verdict (and why there was none) with its drift share: a tick that
    judged nothing (no captured rows, no baseline) must not read like a passed check."""
    if run.error:
        return run.error
    if not run.reports:  # a run stored without its reports: its scores are all there is
        return "; ".join(
            f"{variant}: {len(scores)} scores" for variant, scores in sorted(run.scores.items())
        ) or "-"  # fmt: skip
    return "; ".join(_outcome(report, run.scores) for report in run.reports)


def _outcome(stored: dict[str, Any], scores: dict[str, dict[str, float]]) -> str:
    report = DriftReport.from_dict(stored)
    variant = report.variant or "-"
    why = report.no_verdict_reason()
    if why is not None:
        return f"{variant}: {report.verdict.value} ({why})"
    share = scores.get(variant, {}).get("drift.share")
    return f"{variant}: {report.verdict.value}" + (
        f", drift.share={share:.3g}" if share is not None else ""
    )


def _print_pass(done: Pass) -> None:
    from modelyard.cli.render_deployments import decision_line

    for decision in done.decisions:
        console.print(decision_line(decision), markup=False)
    for ran in done.scheduled:
        outcome = f"job {ran.job}" if ran.job else (ran.error or "no job")
        late = f" (late; {ran.missed_text})" if ran.late else ""
        console.print(
            f"schedule {ran.schedule} at {ran.tick:%Y-%m-%d %H:%M %Z}: {ran.status.value}, "
            f"{outcome}{late}",
            markup=False,
        )
    for run in done.runs:
        took = f" in {run.duration_s:.2f}s" if run.duration_s is not None else ""
        console.print(
            f"monitor {run.schedule} at {_when(run)}: {run.status.value}{took}  {_scores(run)}",
            markup=False,
        )
    for event in done.events:
        console.print(
            f"alarm {event.alarm}: {event.old.value} -> {event.new.value}  {event.reason}",
            markup=False,
        )


Once = Annotated[bool, typer.Option("--once", help="One pass, then exit.")]
Poll = Annotated[float, typer.Option(min=0.1, max=300, help="Longest seconds between passes.")]
Parent = Annotated[int | None, typer.Option(hidden=True)]


def scheduler(
    once: Once = False, poll: Poll = 2.0, parent: Parent = None, json_: JsonFlag = False
) -> None:
    """Run the batch schedules and monitor schedules and evaluate the alarms until Ctrl-C (or
    one pass with --once).

    `modelyard serve` runs this loop too; several may share a store (each tick runs once). A
    batch schedule's ticks missed while no loop ran follow its --missed policy when one starts.
    """
    _loop("scheduler", once=once, poll=poll, parent=parent, json_=json_)


@app.command("run")
def run(
    once: Once = False, poll: Poll = 2.0, parent: Parent = None, json_: JsonFlag = False
) -> None:
    """Run the scheduler loop (the same as `modelyard scheduler`): monitor schedules, alarms
    and batch schedules, until Ctrl-C (or one pass with --once)."""
    _loop("monitor loop", once=once, poll=poll, parent=parent, json_=json_)


def _loop(title: str, *, once: bool, poll: float, parent: int | None, json_: bool) -> None:
    from modelyard.services.scheduler import Scheduler

    current = platform()
    scheduler = Scheduler(
        current.monitors,
        current.alarms,
        schedules=current.schedules,
        deployments=current.deployment_controller,
        poll_s=poll,
        housekeeping=current.housekeeping,
    )
    if once:
        done = scheduler.run_once()
        if json_:
            print_json(
                {
                    "runs": done.runs,
                    "events": done.events,
                    "scheduled": done.scheduled,
                    "decisions": done.decisions,
                }
            )
        elif done.runs or done.events or done.scheduled or done.decisions:
            _print_pass(done)
        else:
            console.print("nothing was due: no schedule ticked, no alarm window ended")
        return
    if json_:
        raise InvalidInput("--json goes with --once (the loop prints a line per run)")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per webhook call otherwise
    stop = threading.Event()
    from modelyard.processes import set_on_signals, stop_with_parent

    set_on_signals(stop, signal.SIGTERM)
    if parent is not None:
        stop_with_parent(parent)
    typer.echo(
        f"{title} running: {len(current.monitors.schedules())} schedule(s), "
        f"{len(current.alarms.list_alarms())} alarm(s), "
        f"{len(current.schedules.schedules())} batch schedule(s); Ctrl-C to stop",
        err=True,
    )
    try:
        scheduler.run_forever(stop, on_pass=_print_pass)
    except KeyboardInterrupt:
        typer.echo(f"{title} stopped", err=True)


def start_loop_process() -> subprocess.Popen[bytes]:
    """Start ``modelyard scheduler`` as a child of this process (``modelyard serve`` runs its
    scheduler loop so: in a process of its own, beside the server workers, never in their
    request path). It stops when this process stops (or dies); see :func:`stop_loop_process`.
    """
    command = [sys.executable, "-m", "modelyard.cli.main", "scheduler"]
    return subprocess.Popen([*command, "--parent", str(os.getpid())], stdin=subprocess.DEVNULL)


def stop_loop_process(loop: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """Ask the loop started by :func:`start_loop_process` to stop, and wait for it."""
    if loop.poll() is None:
        loop.terminate()
        try:
            loop.wait(timeout_s)
        except subprocess.TimeoutExpired:
            loop.kill()
            loop.wait()
