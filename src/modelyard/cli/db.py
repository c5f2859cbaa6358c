"""``modelyard db …``: the metadata database's schema, upgraded on purpose.

On a database that several processes share (PostgreSQL), a newer modelyard refuses an older
schema instead of upgrading it under the older processes still using it; ``db upgrade`` is
the one command that upgrades it. The embedded SQLite store upgrades itself when opened.
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli.render import console, print_json

app = typer.Typer(name="db", help="Manage the metadata database's schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    json_: Annotated[
        bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")
    ] = False,
) -> None:
    """Apply the schema migrations this modelyard ships to MODELYARD_DB_URL.

    Upgrade the servers and workers that use the database along with it: a process of an
    older modelyard refuses the newer schema the next time it opens the database.
    """
    # Imported here: bootstrap pulls in SQLAlchemy, which --help never needs.
    from modelyard.bootstrap import upgrade_database

    done = upgrade_database()
    if json_:
        print_json(
            {"url": done.url, "from": done.before, "to": done.after, "changed": done.changed}
        )
    elif not done.changed:
        console.print(
            f"The metadata database {done.url} is already current (schema revision {done.after})."
        )
    elif done.before is None:
        console.print(
            f"Created the schema in the metadata database {done.url} at revision {done.after}."
        )
    else:
        console.print(
            f"Upgraded the metadata database {done.url} "
            f"from schema revision {done.before} to {done.after}."
        )
