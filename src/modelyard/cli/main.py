"""The ``modelyard`` command: the root Typer app and the console-script entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from modelyard.cli import context, models, store
from modelyard.cli.errors import invoke
from modelyard.cli.render import console

app = typer.Typer(
    name="modelyard",
    help="Self-hosted machine-learning deployment platform: a versioned model registry.",
    no_args_is_help=True,
    # Errors are translated once, in modelyard.cli.errors; Typer's own traceback printer would
    # show users our internals instead.
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(store.app, name="store")


@app.command("demo")
def demo(
    exit_: Annotated[
        bool,
        typer.Option(
            "--exit",
            help="Finish instead of serving. The demo has nothing to serve yet, so today it "
            "always finishes; the flag keeps scripts stable once it does.",
        ),
    ] = False,
) -> None:
    """Train two XGBoost models, register them, move the production alias, load it back."""
    # Imported here: the demo pulls in scikit-learn and XGBoost, which other commands never need.
    from modelyard.demo import run_demo

    run_demo(context.platform(), console)


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
