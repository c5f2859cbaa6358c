"""``modelyard deployments list|show|pause|resume|stop|rollback|compare|promote`` and
``modelyard controller``.

Deployments start with ``modelyard endpoints update NAME … --strategy canary|linear|blue-green``;
the controller loop (``modelyard controller``, or the one ``modelyard serve`` runs) moves them
step by step. ``compare`` sets a shadow variant against production, ``promote`` makes a shadow
the production variant. Each command makes one call into a service and renders the result.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli.context import platform
from modelyard.cli.render import (
    console,
    endpoint_change,
    endpoint_dict,
    endpoint_unchanged,
    print_json,
)
from modelyard.cli.render_deployments import (
    comparison_text,
    decision_line,
    deployment_detail,
    deployment_dict,
    deployments_table,
    step_text,
)
from modelyard.domain.counts import MAX_LIMIT
from modelyard.domain.durations import parse_duration, parse_time
from modelyard.domain.shadow_comparison import ShadowCompareConfig
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from modelyard.services.deployment_controller import DeploymentController
    from modelyard.services.deployments import Change, DeploymentService

app = typer.Typer(
    name="deployments",
    help="Guarded deployments of endpoint configs (canary, linear, blue/green): their steps, "
    "decisions, and pause, resume, stop, rollback.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]


def service() -> DeploymentService:
    """The deployment service of this command."""
    return platform().deployments


def _controller() -> DeploymentController:
    return platform().deployment_controller


@app.command("list")
def list_(
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="Only this endpoint's.")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint's (as NAME).")] = None,
    limit: Annotated[int, typer.Option(help=f"How many, newest first (1 to {MAX_LIMIT:,}).")] = 50,
    json_: JsonFlag = False,
) -> None:
    """Deployments, newest first: strategy, state, current step, and why."""
    if name is not None and endpoint is not None and name != endpoint:
        raise InvalidInput(
            f"give the endpoint once, as NAME or --endpoint: {name!r} or {endpoint!r}?"
        )
    found = service().list_deployments(name or endpoint, limit)
    if json_:
        print_json([d.to_dict() for d in found])
    elif not found:
        console.print(
            "No deployments yet; start one with 'modelyard endpoints update NAME … "
            "--strategy canary'.",
            markup=False,
        )
    else:
        console.print(deployments_table(found))


@app.command("show")
def show(
    name: NameArg,
    id_: Annotated[
        int | None, typer.Option("--id", min=1, help="An earlier deployment (default: latest).")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """The latest deployment of endpoint NAME: its plan, state, step history and every
    decision with the checks behind it (their values and window)."""
    s = service()
    d = s.get(name, id_)
    steps, decisions = s.steps(d), s.decisions(d)
    if json_:
        print_json(deployment_dict(d, steps, decisions))
    else:
        console.print(deployment_detail(d, steps, decisions), markup=False)


@app.command("pause")
def pause(name: NameArg, json_: JsonFlag = False) -> None:
    """Hold the deployment of NAME at its step (its alarms and checks still roll it back)."""
    d, changed = service().pause(name)
    if json_:
        print_json(d.to_dict())
    else:
        said = "paused" if changed else "was paused already:"
        console.print(
            f"deployment {d.id} of {d.endpoint} {said} at step {step_text(d)}", markup=False
        )


@app.command("resume")
def resume(name: NameArg, json_: JsonFlag = False) -> None:
    """Resume the paused deployment of NAME: its current step starts again."""
    d, changed = service().resume(name)
    if json_:
        print_json(d.to_dict())
    else:
        said = "resumed" if changed else "was running already:"
        console.print(
            f"deployment {d.id} of {d.endpoint} {said} at step {step_text(d)}", markup=False
        )


@app.command("stop")
def stop(name: NameArg, json_: JsonFlag = False) -> None:
    """End the deployment of NAME where it is: the endpoint keeps its current config (while
    it prepares, before any traffic moved, the endpoint returns to its config before)."""
    d = service().stop(name)
    if json_:
        print_json(d.to_dict())
    else:
        console.print(f"deployment {d.id} of {d.endpoint} stopped: {d.reason}", markup=False)


@app.command("rollback")
def rollback(name: NameArg, json_: JsonFlag = False) -> None:
    """Put all traffic of NAME back on its previous config: the running deployment's old
    config, or (none running) the config before the endpoint's last change."""
    done = service().rollback(name)
    print_change(done, json_)


def print_change(done: Change, json_: bool) -> None:
    """What a start or a rollback did."""
    if json_:
        data = endpoint_dict(done.endpoint)
        data["deployment"] = done.deployment.to_dict() if done.deployment else None
        data["changed"] = done.changed  # False: it serves that config already
        print_json(data)
        return
    if not done.changed:
        console.print(f"{endpoint_unchanged(done.endpoint)}; no deployment started", markup=False)
        return
    if done.deployment is not None:
        d = done.deployment
        console.print(
            f"deployment {d.id} of {d.endpoint}: {d.state.value}: {d.reason}", markup=False
        )
    console.print(endpoint_change(done.endpoint), markup=False)


@app.command("compare")
def compare(
    name: NameArg,
    shadow: Annotated[
        str | None,
        typer.Option(
            "--shadow",
            metavar="VARIANT",
            help="The shadow variant (needed when there are several).",
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="The last DURATION: 30m, 1h, 1d (default 1h)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help="Start: a duration before now (2h) or an ISO time."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="WHEN", help="End (default: now), as --since.")
    ] = None,
    min_pairs: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="PAIRS",
            help="Fewer paired predictions give insufficient_data, without an agreement rate.",
        ),
    ] = ShadowCompareConfig().min_pairs,
    json_: JsonFlag = False,
) -> None:
    """Compare the shadow variant of endpoint NAME with production over a window: agreement
    (classifiers) or the differences (regressors) of the predictions both made for the same
    requests, how far apart their prediction distributions are, requests, error rates and
    latency, and the accuracy (or RMSE, MAE) of both once labels have arrived.

    Both sides' predictions must be captured (--capture on `endpoints update`).
    """
    if window is not None and since is not None:
        raise typer.BadParameter("give --window or --since, not both", param_hint="'--window'")
    now = datetime.now(UTC)
    found = platform().shadow_compare.compare(
        name,
        shadow,
        since=parse_time(since, now) if since is not None else None,
        until=parse_time(until, now) if until is not None else now,
        window=parse_duration(window) if window is not None else None,
        config=ShadowCompareConfig(min_pairs=min_pairs),
    )
    if json_:
        print_json(found.to_dict())
    else:
        console.print(comparison_text(found), markup=False)


@app.command("promote")
def promote(
    name: NameArg,
    variant: Annotated[
        str | None,
        typer.Option(
            "--variant", metavar="VARIANT", help="The shadow to promote (needed when several)."
        ),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Promote the shadow variant of endpoint NAME: it becomes the only production variant and
    takes all the traffic, with its model version, batching, predictor and capture; the
    production variants and any other shadows leave. One new config: `endpoints rollback`
    returns to the one before."""
    done = platform().deployments.promote(name, variant)
    if json_:
        print_json(endpoint_dict(done))
    else:
        console.print(endpoint_change(done), markup=False)


Once = Annotated[bool, typer.Option("--once", help="One pass, then exit.")]
Poll = Annotated[float, typer.Option(min=0.1, max=300, help="Seconds between passes.")]
Parent = Annotated[int | None, typer.Option(hidden=True)]


def controller(
    once: Once = False, poll: Poll = 2.0, parent: Parent = None, json_: JsonFlag = False
) -> None:
    """Run the deployment controller until Ctrl-C (or one pass with --once): every active
    deployment is evaluated and moved on (advanced, paused, rolled back, completed).

    Several controllers may share a store (each step is evaluated by one at a time);
    `modelyard serve` runs one in its scheduler process.
    """
    loop = _controller()
    if once:
        made = loop.run_once()
        if json_:
            print_json([x.to_dict() for x in made])
        elif made:
            for decision in made:
                console.print(decision_line(decision), markup=False)
        else:
            console.print("nothing to decide: no active deployment moved", markup=False)
        return
    if json_:
        raise InvalidInput("--json goes with --once (the loop prints a line per decision)")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    halt = threading.Event()
    from modelyard.processes import set_on_signals, stop_with_parent

    set_on_signals(halt, signal.SIGTERM)
    if parent is not None:
        stop_with_parent(parent)
    active = len([d for d in service().list_deployments() if d.state.active])
    typer.echo(
        f"deployment controller running: {active} active deployment(s); Ctrl-C to stop", err=True
    )
    try:
        loop.run_forever(
            halt, poll, on_decision=lambda x: console.print(decision_line(x), markup=False)
        )
    except KeyboardInterrupt:
        typer.echo("deployment controller stopped", err=True)
