"""The ``modelyard`` command: the root Typer app and the console-script entry point.

Each sub-command's module is imported, and each command turned into a click command, only when
it runs or a help page lists it: ``modelyard models list`` imports the registry's commands, not
the training, tuning and serving ones, and Typer inspects the signature of ``list`` alone (it
would otherwise inspect all ~45 on every run).
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
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
    "batch": ("modelyard.cli.batch", "batch"),
    "serve": ("modelyard.cli.serve", "serve"),
    "invoke": ("modelyard.cli.invoke", "invoke_endpoint"),
    "demo": None,
    "models": ("modelyard.cli.models", "app"),
    "endpoints": ("modelyard.cli.endpoints", "app"),
    "store": ("modelyard.cli.store", "app"),
    "db": ("modelyard.cli.db", "app"),
    "jobs": ("modelyard.cli.jobs", "app"),
    "tune": ("modelyard.cli.tune", "app"),
    "monitor": ("modelyard.cli.monitor", "app"),
    "schedules": ("modelyard.cli.schedules", "app"),
    "scheduler": ("modelyard.cli.monitor_schedule", "scheduler"),
    "alarms": ("modelyard.cli.alarms", "app"),
    "capture": ("modelyard.cli.capture", "app"),
    "deployments": ("modelyard.cli.deployments", "app"),
    "controller": ("modelyard.cli.deployments", "controller"),
}


class _LazyCommands(MutableMapping[str, "_click.Command"]):
    """A group's commands: listing their names builds nothing; looking one up builds it."""

    def __init__(
        self,
        built: Mapping[str, _click.Command],
        later: Mapping[str, Callable[[], _click.Command]],
        order: Sequence[str] = (),
    ) -> None:
        self._built = dict(built)
        self._later = dict(later)
        names = [n for n in order if n in self._built or n in self._later]
        self._names = list(dict.fromkeys([*names, *self._built, *self._later]))

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self._built:
            if name not in self._names or name not in self._later:
                raise KeyError(name)
            self._built[name] = self._later[name]()
        return _summarised(self._built[name])

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


def _summarised(command: _click.Command) -> _click.Command:
    """``command`` with its summary in a group's list on one line (the first paragraph of its
    help) and its help's paragraphs reflowed: Typer's rich help keeps a docstring's line
    breaks, so it broke sentences wherever the source wrapped them, whatever the terminal's
    width."""
    if command.help and not getattr(command, "_reflowed", False):
        command.help = reflowed(command.help)
        command._reflowed = True  # type: ignore[attr-defined]
    if command.short_help is None and command.help:
        command.short_help = command.help.split("\n\n")[0]
    return command


def reflowed(text: str) -> str:
    """``text`` (a docstring) with each paragraph's lines joined into one, for the terminal to
    wrap; a paragraph holding a list or an indented example keeps its lines."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    kept = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        if any(line.startswith((" ", "- ", "* ", "$ ")) for line in lines):
            kept.append(paragraph)
        else:
            kept.append(" ".join(paragraph.split()))
    return "\n\n".join(kept)


def _group(app: typer.Typer) -> TyperGroup:
    """``app`` as a group (even with one command) whose commands are built on lookup."""
    shell = copy.copy(app)
    shell.registered_commands = []
    group = typer.main.get_group(shell)
    later = {
        info.name or typer.main.get_command_name(info.callback.__name__): functools.partial(
            typer.main.get_command_from_info,
            info,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )
        for info in app.registered_commands
        if info.callback is not None
    }
    group.commands = _LazyCommands(group.commands, later)
    return group


def _build(name: str, module: str, attribute: str) -> _click.Command:
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        group = _group(target)
        group.name = name  # help lists it under this name, whatever the sub-app calls itself
        return group
    single = typer.Typer(add_completion=False)
    single.command(name)(target)
    return typer.main.get_command(single)


class _LazyGroup(TyperGroup):
    """The root group: its sub-commands come from :data:`_SUBCOMMANDS` when looked up."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        later = {
            name: functools.partial(_build, name, *where)
            for name, where in _SUBCOMMANDS.items()
            if where is not None
        }
        self.commands = _LazyCommands(self.commands, later, order=list(_SUBCOMMANDS))


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
        The exit status (:func:`main`, the console script, exits with it).
    """
    try:
        # A group even though ``app`` itself registers one command: the rest are lazy.
        return invoke(typer.main.get_group(app), argv, prog_name="modelyard")
    finally:
        context.close()


def main() -> None:
    """The ``modelyard`` console script: :func:`run`, then leave without tearing the
    interpreter down. By then the command has closed its Platform and its output is flushed
    here; unloading SQLAlchemy, pydantic and rich module by module took 0.15-0.25 s after
    every command (measured), for nothing. Call :func:`run` to stay in the process."""
    code = run()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
