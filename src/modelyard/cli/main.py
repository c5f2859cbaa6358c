"""The ``modelyard`` command: the root Typer app and the console-script entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from modelyard.cli import context, endpoints, jobs, models, serve, store, tune
from modelyard.cli.errors import invoke
from modelyard.cli.invoke import invoke_endpoint
from modelyard.cli.render import console

app = typer.Typer(
    name="modelyard",
    help="Self-hosted machine-learning deployment platform: registry, endpoints, serving.",
    no_args_is_help=True,
    # Errors are translated once, in modelyard.cli.errors; Typer's own traceback printer would
    # show users our internals instead.
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(endpoints.app, name="endpoints")
app.add_typer(store.app, name="store")
app.add_typer(jobs.app, name="jobs")
app.add_typer(tune.app, name="tune")
app.command("train")(jobs.train)
app.command("serve")(serve.serve)
app.command("invoke")(invoke_endpoint)


@app.command("demo")
def demo(
    exit_: Annotated[
        bool,
        typer.Option("--exit", help="Stop the server and finish once the traffic is sent."),
    ] = False,
    port: Annotated[
        int,
        typer.Option(min=0, max=65535, help="Port of the demo server on 127.0.0.1 (0: any free)."),
    ] = 8080,
    requests: Annotated[
        int, typer.Option(min=1, max=100_000, help="Requests to send through the endpoint.")
    ] = 300,
) -> None:
    """Train and register two XGBoost models, deploy them blue/green (90/10) on an endpoint,
    serve it, send traffic and show which variant answered; then keep serving until Ctrl-C."""
    # Imported here: the demo pulls in scikit-learn and XGBoost, which other commands never need.
    from modelyard.demo import run_full_demo

    run_full_demo(context.platform(), console, port=port, requests=requests, keep_serving=not exit_)


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modelyard`` console script.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status (the console script passes it to ``sys.exit``).
    """
    try:
        return invoke(typer.main.get_command(app), argv, prog_name="modelyard")
    finally:
        context.close()


if __name__ == "__main__":
    sys.exit(run())
