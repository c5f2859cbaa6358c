"""``modelyard store …``: where modelyard keeps its state, and what is in it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json, store_detail

app = typer.Typer(
    name="store", help="Inspect the metadata and artifact stores.", no_args_is_help=True
)


@app.command("info")
def info(
    json_: Annotated[
        bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")
    ] = False,
) -> None:
    """Show the database (password hidden), schema revision, artifact store and counts."""
    current = platform()
    described = current.metadata.describe()
    data: dict[str, Any] = {
        "home": str(current.settings.home),
        "metadata_url": described.get("url"),
        "backend": described.get("backend"),
        "schema_revision": described.get("schema_revision"),
        "schema_head": described.get("schema_head"),
        "artifact_url": current.artifacts.url,
        "models": described.get("models"),
        "versions": described.get("versions"),
    }
    if json_:
        print_json(data)
    else:
        console.print(store_detail(data))
