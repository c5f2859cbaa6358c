"""``modelyard deployments list|show|pause|resume|stop|rollback`` and ``modelyard controller``.

Deployments start with ``modelyard endpoints update NAME … --strategy canary|linear|blue-green``;
the controller loop (``modelyard controller``, or the one ``modelyard serve`` runs) moves them
step by step. Each command makes one call into the deployment service and renders the result.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli.context import platform
from modelyard.cli.render import console, endpoint_change, endpoint_dict, print_json
from modelyard.cli.render_deployments import (
    decision_line,
    deployment_detail,
    deployment_dict,
    deployments_table,
    step_text,
)
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
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
    json_: JsonFlag = False,
) -> None:
    """Deployments, newest first: strategy, state, current step, and why."""
    found = service().list_deployments(endpoint, limit)
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
    """End the deployment of NAME where it is: the endpoint keeps its current config."""
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
        print_json(data)
        return
    if done.deployment is not None:
        d = done.deployment
        console.print(
            f"deployment {d.id} of {d.endpoint}: {d.state.value}: {d.reason}", markup=False
        )
    console.print(endpoint_change(done.endpoint), markup=False)


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
    signal.signal(signal.SIGTERM, lambda *_: halt.set())
    if parent is not None:
        from modelyard.processes import stop_with_parent

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
