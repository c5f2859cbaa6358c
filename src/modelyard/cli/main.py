"""The ``modelyard`` command: the root Typer app and the console-script entry point.

Each sub-command's module is imported, and its Typer app turned into a command, only when the
command runs or a help page lists it: ``modelyard models list`` loads the registry's commands,
not the training, tuning and serving ones (and Typer inspects a few signatures, not all 40).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from modelyard.cli import context
from modelyard.cli.errors import invoke

if TYPE_CHECKING:
    from typer import _click

#: The root's sub-commands in the order help lists them: name → (module, attribute), the
#: attribute a Typer sub-app or a command function; None for one defined in this module.
_SUBCOMMANDS: dict[str, tuple[str, str] | None] = {
    "train": ("modelyard.cli.jobs", "train"),
    "serve": ("modelyard.cli.serve", "serve"),
    "invoke": ("modelyard.cli.invoke", "invoke_endpoint"),
    "demo": None,
    "models": ("modelyard.cli.models", "app"),
    "endpoints": ("modelyard.cli.endpoints", "app"),
    "store": ("modelyard.cli.store", "app"),
    "db": ("modelyard.cli.db", "app"),
    "jobs": ("modelyard.cli.jobs", "app"),
    "tune": ("modelyard.cli.tune", "app"),
}


def _build(name: str, module: str, attribute: str) -> _click.Command:
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        return typer.main.get_group(target)  # a group even when it has one command
    single = typer.Typer(add_completion=False)
    single.command(name)(target)
    return typer.main.get_command(single)


class _LazyCommands(MutableMapping[str, "_click.Command"]):
    """The root group's commands: listing them imports nothing; looking one up builds it."""

    def __init__(self, built: Mapping[str, _click.Command]) -> None:
        self._built = dict(built)
        self._names = [n for n, where in _SUBCOMMANDS.items() if where or n in self._built]
        self._names += [n for n in self._built if n not in self._names]

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self._built:
            where = _SUBCOMMANDS.get(name) if name in self._names else None
            if where is None:
                raise KeyError(name)
            self._built[name] = _build(name, *where)
        return self._built[name]

    def __setitem__(self, name: str, command: _click.Command) -> None:
        self._built[name] = command
        if name not in self._names:
            self._names.append(name)

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


class _LazyGroup(TyperGroup):
    """The root group, with :class:`_LazyCommands` for commands."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.commands)


app = typer.Typer(
    name="modelyard",
    help="Self-hosted machine-learning deployment platform: registry, endpoints, serving.",
    no_args_is_help=True,
    # Errors are translated once, in modelyard.cli.errors; Typer's own traceback printer would
    # show users our internals instead.
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_LazyGroup,
)


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
    from modelyard.cli.render import console
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
        # A group even though ``app`` itself registers one command: the rest are lazy.
        return invoke(typer.main.get_group(app), argv, prog_name="modelyard")
    finally:
        context.close()


if __name__ == "__main__":
    sys.exit(run())
