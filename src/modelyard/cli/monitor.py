"""``modelyard monitor``: baselines, drift, metrics, schedules and reports of deployed models.

Each command lives in its own module (``monitor_*.py``) and is registered here.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Watch deployed models: baselines, drift, metrics, schedules and reports.",
    no_args_is_help=True,
)
