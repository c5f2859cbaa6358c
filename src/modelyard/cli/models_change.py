"""``modelyard models`` commands that change existing records: alias, tag, archive, restore,
delete. They are attached to the ``models`` sub-app by :mod:`modelyard.cli.models`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from modelyard.cli.context import registry
from modelyard.cli.options import pairs
from modelyard.cli.render import console
from modelyard.errors import InvalidInput

VersionRef = Annotated[
    str, typer.Argument(metavar="NAME:VERSION", help="The version, e.g. churn:3.")
]


def alias(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias, e.g. production.")],
    version: Annotated[
        int | None, typer.Argument(metavar="[VERSION]", help="Version number to point it at.")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias instead.")] = False,
) -> None:
    """Point ALIAS at VERSION (moving it if it exists), or remove it with --delete."""
    if delete == (version is not None):
        raise typer.BadParameter(
            "give either a VERSION to point the alias at, or --delete", param_hint="'VERSION'"
        )
    reg = registry()
    if delete:
        reg.delete_alias(name, alias)
        console.print(f"Removed alias {name}@{alias}")
        return
    assert version is not None  # checked above; narrows the type
    # Where it was comes from the write itself: another machine may move it in between.
    moved = reg.move_alias(name, alias, version)
    target, before = moved.target, moved.replaced
    if before is None:
        console.print(f"Alias {name}@{alias} → {target.ref}")
    elif before == target.version:
        console.print(f"Alias {name}@{alias} already points at {target.ref}")
    else:
        console.print(f"Moved alias {name}@{alias} from {name}:{before} to {target.ref}")


def tag(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="NAME tags the model; NAME:VERSION or NAME@ALIAS a version."
        ),
    ],
    pairs_: Annotated[
        list[str] | None, typer.Argument(metavar="[KEY=VALUE]...", help="Tags to set.")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option(metavar="KEY", help="Tag key to remove (repeatable).")
    ] = None,
) -> None:
    """Set and remove tags on a model or on one version."""
    to_set = pairs(pairs_, "KEY=VALUE")
    to_remove = list(remove or ())
    if not to_set and not to_remove:
        raise typer.BadParameter(
            "give at least one KEY=VALUE to set, or --remove KEY", param_hint="'KEY=VALUE'"
        )
    registry().set_tags(ref, to_set, to_remove)
    changes = [f"{k}={v}" for k, v in to_set.items()] + [f"-{k}" for k in to_remove]
    console.print(f"Tagged {ref}: {' '.join(changes)}")


def archive(ref: VersionRef) -> None:
    """Archive a version: kept and loadable by number, never chosen as latest."""
    version = registry().archive(ref)
    console.print(f"Archived {version.ref}")


def restore(ref: VersionRef) -> None:
    """Bring an archived version back to ready."""
    version = registry().restore(ref)
    console.print(f"Restored {version.ref}")


def delete(
    ref: VersionRef,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a version's record; its number is never reused."""
    reg = registry()
    # Resolve first, so an unknown version is reported before any question is asked.
    found = reg.get_version(ref)
    if not yes:
        if not sys.stdin.isatty():
            # Not a rule about models, only about asking: nobody can answer on a pipe.
            raise InvalidInput(
                f"refusing to delete {found.ref} without confirmation (stdin is not a "
                "terminal); pass --yes"
            )
        typer.confirm(f"Delete {found.ref}? This cannot be undone", abort=True)
    deleted = reg.delete_version(ref)
    console.print(f"Deleted {deleted.ref}")


#: Command name → function, attached to the ``models`` app in this order.
COMMANDS: dict[str, Callable[..., Any]] = {
    "alias": alias,
    "tag": tag,
    "archive": archive,
    "restore": restore,
    "delete": delete,
}
